export * from './packet-batch';
export * from './parse-stats';
export { parseLines, TcpdumpParser } from './tcpdump-parser';
export type { TcpdumpParserOptions } from './tcpdump-parser';
export * from './dns-text';
