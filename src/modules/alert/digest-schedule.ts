import { DateTime } from 'luxon';

/** When a rule's digest goes out: every day, or every week on `weekday` (1 Monday ... 7 Sunday), at `time` (HH:MM) local to `timeZone`. */
export interface DigestSchedule {
  weekly: boolean;
  time: string;
  timeZone: string;
  weekday: number | null;
}

/** Whether the zone is an IANA time zone luxon knows. Pure. */
export function validTimeZone(zone: string): boolean {
  return DateTime.local().setZone(zone).isValid;
}

export function validTime(time: string): boolean {
  return /^([01]\d|2[0-3]):[0-5]\d$/.test(time);
}

/**
 * The latest scheduled instant at or before `now` (epoch ms). Local wall time: across a DST change the digest
 * stays at its local hour; a time that does not exist that day (spring forward) moves forward with the clock. Pure.
 */
export function lastDigestDue(s: DigestSchedule, now: number): number {
  const [hour, minute] = s.time.split(':').map(Number);
  const local = DateTime.fromMillis(now, { zone: s.timeZone });
  let due = local.set({ hour, minute, second: 0, millisecond: 0 });
  if (s.weekly) {
    due = due.set({ weekday: (s.weekday ?? 1) as 1 | 2 | 3 | 4 | 5 | 6 | 7 });
    if (due.toMillis() > now) due = due.minus({ weeks: 1 }).set({ hour, minute });
  } else if (due.toMillis() > now) {
    due = due.minus({ days: 1 }).set({ hour, minute });
  }
  return due.toMillis();
}
