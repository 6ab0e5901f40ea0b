import { drivers } from '../helpers/db';
import { generateCapture } from '../helpers/capture';
import { ChildServer, gqlHttp, startChild, uploadHttp } from '../helpers/child-process';
import { ChildDatabase, createChildDatabase, seedAccount } from '../helpers/child-db';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Requests whose debug lines fill the pipe (~300 bytes each, several times a pipe's 64 KiB). */
const HEALTH_CHECKS = 800;

describe.each(drivers)('log lines written during shutdown reach stdout (%s)', (driver) => {
  let db: ChildDatabase;
  let child: ChildServer | null = null;

  beforeAll(async () => {
    db = await createChildDatabase(driver);
  });
  afterAll(async () => {
    if (child && child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL');
    await db.drop();
  });

  it('every line, job.handed_back included, is on stdout even when the reader of stdout is slow at the moment of exit', async () => {
    // The server's JSON log on stdout, debug lines included; the worker stalls after each parsed slice.
    child = await startChild({ ...db.env, LOG_STDOUT: '1', LOG_LEVEL: 'debug', PROGRESS_DELAY_MS: '300', WORKER_POLL_MS: '50', WORKER_LEASE_MS: '600000' });
    let out = '';
    child.proc.stdout!.on('data', (d) => (out += d));
    const key = child.secret!;
    const capture = generateCapture(21, 3000, 12);
    await seedAccount(child.url, key, capture.badAddresses, [{ nickname: 'busy', ip: '8.8.8.8' }]);

    // A reader that stops reading (a log shipper that stalls): the pipe fills with /healthz debug lines.
    child.proc.stdout!.pause();
    for (let i = 0; i < HEALTH_CHECKS / 50; i++)
      await Promise.all(Array.from({ length: 50 }, () => fetch(`http://127.0.0.1:${child!.port}/healthz`).then((r) => r.text())));
    const id = (await uploadHttp(child.url, key, 'busy', capture.text)).logUpload.id as string;
    for (let i = 0; (await gqlHttp(child.url, key, `query($id: ID!) { logUpload(id: $id) { status } }`, { id })).logUpload.status !== 'PROCESSING'; i++) {
      if (i > 400) throw new Error('the job was never claimed');
      await sleep(25);
    }
    const drained = new Promise((r) => child!.proc.once('close', r));
    child.proc.kill('SIGTERM');
    // The reader comes back once the process has exited, or after 3 s: a process that exits without waiting
    // for its log to be written has lost the lines still in its buffer by then.
    await Promise.race([child.exited, sleep(3_000)]);
    child.proc.stdout!.resume();
    expect(await child.exited).toEqual({ code: 0, signal: null });
    await drained;

    // The job really was handed back (nothing else logs that line), and the log says so, before its last line.
    const rows = await db.query<{ status: string; lease_owner: string | null }>('SELECT status, lease_owner FROM log_upload');
    expect(rows).toEqual([{ status: 'QUEUED', lease_owner: null }]);
    const events = out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { event?: string; route?: string; msg: string });
    // Nothing lost on the way: a chunk still waiting for the pipe at exit used to be dropped, whichever it held.
    expect(events.filter((e) => e.event === 'http.request' && e.route === '/healthz')).toHaveLength(HEALTH_CHECKS);
    expect(events.filter((e) => e.event === 'job.handed_back')).toHaveLength(1);
    expect(events.some((e) => e.msg === 'shutting down')).toBe(true);
  });
});
