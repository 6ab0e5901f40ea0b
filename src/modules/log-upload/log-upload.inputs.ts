import { Field, ID, InputType } from 'type-graphql';
import { GraphQLUpload } from 'graphql-upload-minimal';
import type { FileUpload } from 'graphql-upload-minimal';
import { SafeInt } from '../../common/graphql/safe-int.scalar';
import { LogUploadStatus } from './log-upload.enums';

@InputType({
  description:
    'A tcpdump text file to upload. Name the device by exactly one of device, deviceNickname or deviceIp (none with a key bound to a device: that device).',
})
export class LogUploadCreateInput {
  @Field(() => ID, { nullable: true, description: 'The device, by ID.' })
  device?: string | null;

  @Field(() => String, { nullable: true, description: 'The device, by nickname (case-insensitive).' })
  deviceNickname?: string | null;

  @Field(() => String, { nullable: true, description: 'The device, by its static IP or the current address of its DNS name.' })
  deviceIp?: string | null;

  @Field(() => GraphQLUpload, {
    description: 'The output of `tcpdump -tt -n` (plain or gzip-compressed). Binary pcap/pcapng is refused with the command that converts it.',
  })
  file: Promise<FileUpload>;

  @Field(() => String, { nullable: true, description: 'MD5 of the file as sent (hex); the upload is refused when what arrived differs.' })
  md5?: string | null;

  @Field(() => SafeInt, { nullable: true, description: 'Size of the file as sent, in bytes; the upload is refused when what arrived differs.' })
  size?: number | null;
}

@InputType({ description: 'The upload to process again.' })
export class LogUploadReprocessInput {
  @Field(() => ID, { description: 'The upload.' })
  id: string;
}

@InputType({ description: 'Narrows the uploads; all given conditions must hold.' })
export class LogUploadFilter {
  @Field(() => [ID], { nullable: true, description: 'Only uploads of these devices.' })
  devices?: string[] | null;

  @Field(() => [LogUploadStatus], { nullable: true, description: 'Only uploads in these states.' })
  statuses?: LogUploadStatus[] | null;

  @Field(() => Date, { nullable: true, description: 'Only uploads received at or after this instant.' })
  receivedFrom?: Date | null;

  @Field(() => Date, { nullable: true, description: 'Only uploads received before this instant.' })
  receivedTo?: Date | null;
}
