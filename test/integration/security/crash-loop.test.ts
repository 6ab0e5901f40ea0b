import { drivers } from '../../helpers/db';
import { CrashLoopResult, runCrashLoop } from '../../helpers/crash-loop';

// CRASH_CYCLES=100 for a longer run; bench/crash-loop.bench.ts prints figures for one.
const CYCLES = Number(process.env.CRASH_CYCLES ?? 20);

describe.each(drivers)('nothing acknowledged is lost across repeated SIGKILLs (%s)', (driver) => {
  let run: CrashLoopResult;
  beforeAll(
    async () => {
      run = await runCrashLoop({
        driver,
        cycles: CYCLES,
        minAcknowledged: CYCLES,
        log: process.env.TEST_LOG ? (l) => process.stderr.write(`${l}\n`) : undefined,
      });
    },
    60_000 + 2 * CYCLES * 10_000,
  );

  it(`ran at least ${CYCLES} kill/restart cycles, with ${CYCLES} uploads acknowledged, that hit uploads and jobs in progress`, () => {
    // At least CYCLES cycles, more on a slow machine until CYCLES uploads were acknowledged: a kill each.
    expect(run.cycles).toBeGreaterThanOrEqual(CYCLES);
    expect(run.killsByTimer + run.killsMidJob).toBe(run.cycles);
    expect(run.killsMidJob).toBeGreaterThan(0);
    expect(run.acknowledged).toBeGreaterThanOrEqual(CYCLES);
    // Work was in progress at some kills, and all of it came back.
    expect(run.interrupted).toBeGreaterThan(0);
    expect(run.recovered).toBe(run.interrupted);
  });

  it('every acknowledged upload is COMPLETED with the counts and hits of a clean run of its file', () => {
    for (const upload of run.final) {
      const want = run.reference[upload.capture];
      expect({ id: upload.id, ...upload.counts }).toEqual({ id: upload.id, ...want.counts });
      expect(upload.hits).toEqual(want.hits);
    }
    expect(run.reference.every((r) => r.counts.hits > 0)).toBe(true);
  });

  it('stores each file once per device, each hit once, and leaves nothing unfinished', () => {
    expect(run.duplicateUploadRows).toBe(0);
    expect(run.duplicateHitRows).toBe(0);
    expect(run.rowsNotCompleted).toBe(0);
  });
});
