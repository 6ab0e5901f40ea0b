import { EventEmitter } from 'node:events';
import { DataSource, EntityManager, In } from 'typeorm';
import { failure, Outcome, success, userError, UserErrorCode, UserErrorData } from '../../common/errors/user-error';
import { transientDbError } from '../../common/errors/db-errors';
import { ConnectionData } from '../../common/pagination/connection';
import { keysetPaginate, KeysetPage } from '../../common/pagination/keyset';
import { bulkInsert, dialectOf, execute } from '../../db/bulk';
import { Device } from '../device/device.entity';
import { IocList } from '../ioc/ioc-list.entity';
import { intersects, KeyRange, RangeSet, RangeSetBuilder } from '../log-upload/address-set';
import { readAddressSets } from '../log-upload/address-set.store';
import { DomainChanges } from '../log-upload/name-set';
import { BuildThreads } from '../ioc/matching/build-thread';
import { nextTurn } from '../../common/async/next-turn';
import { readNameSets } from '../log-upload/name-set.store';
import { LogUploadStatus } from '../log-upload/log-upload.enums';
import { RetroHunt } from './retro-hunt.entity';
import { retentionCutoff } from '../report/retention.service';
import { RetroHuntStatus } from './retro-hunt.enums';
import { HuntTarget, insertHunt, requestRetroHunt } from './retro-hunt.request';

export interface RetroHuntOptions {
  /** RETRO_HUNT_MAX_UPLOADS: a hunt that would re-run more uploads is refused. */
  maxUploads: number;
  /** RETENTION_DAYS: a hunt reaching back past it says that older uploads are gone. */
  retentionDays: number;
}

export interface RetroHuntStartData {
  lists?: (number | null)[] | null;
  devices?: (number | null)[] | null;
  since?: Date | null;
}

/** One target resolved at planning time: which devices, and which addresses and names (both null: any). */
interface ResolvedTarget {
  devices: Set<number>;
  /** Null: any address and any name. */
  ranges: RangeSet | null;
  /** Changed address ranges there are (an empty set meets no upload). */
  hasRanges: boolean;
  /** Changed domain entries; null when there are none. */
  domains: DomainChanges | null;
}

/** Changed entries of one hunt's targets, by target index. */
interface TargetChanges {
  ranges: Map<number, KeyRange[]>;
  domains: Map<number, string[]>;
}

const NO_CHANGES: TargetChanges = { ranges: new Map(), domains: new Map() };

/**
 * The entries, and the names, whose expiry passed in (after, now]: read through IDX_ioc_expires and
 * IDX_ioc_domain_expires (migration 1764730000000), so a check every second costs what expired, not the table.
 */
export const EXPIRED_ENTRIES = `SELECT account_id, list_id, range_start, range_end FROM ioc WHERE expires_at > ? AND expires_at <= ? ORDER BY account_id, list_id`;
export const EXPIRED_DOMAINS = `SELECT account_id, list_id, name FROM ioc_domain WHERE expires_at > ? AND expires_at <= ? ORDER BY account_id, list_id`;

/** Rows per page when a whole list is read (an attach, detach or delete re-judges every entry of it). */
const LIST_PAGE = 20_000;

/**
 * Retro-hunts: re-judging stored uploads after a change. A change requests one in its own transaction
 * (retro-hunt.request.ts: coalesced while it waits); `runDue` plans the due ones: it resolves each target to
 * devices and address ranges, intersects them with the stored uploads' address sets (address-set.ts), and in
 * one transaction queues exactly the affected uploads again (log_upload.retro_hunt_id) for the normal worker,
 * whose finishing transaction adds each re-run's counts to the hunt. A crash anywhere leaves either an unplanned
 * hunt (planned again) or queued uploads (the upload queue's leases take it from there).
 */
export class RetroHuntService {
  /** Emits `queued` when a hunt queued uploads (the upload worker looks at once). */
  readonly events = new EventEmitter();

  /** Builds the domain matcher of a large change (a whole list) on a worker thread. */
  private readonly threads = new BuildThreads();

  constructor(
    private readonly dataSource: DataSource,
    private readonly options: RetroHuntOptions,
  ) {}

  async findMany(accountId: number, ids: readonly number[]): Promise<(RetroHunt | null)[]> {
    const rows = ids.length ? await this.dataSource.getRepository(RetroHunt).findBy({ accountId, id: In([...ids]) }) : [];
    const byId = new Map(rows.map((r) => [r.id, r]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  /** Newest first. */
  list(accountId: number, page: KeysetPage): Promise<ConnectionData<RetroHunt>> {
    const qb = this.dataSource.getRepository(RetroHunt).createQueryBuilder('r').where('r.accountId = :accountId', { accountId });
    return keysetPaginate(qb, 'retroHunt', [{ expression: 'r.id', direction: 'DESC', value: (r) => r.id }], page);
  }

  /** Manual start: the given lists' entries (or any address) in the given devices' uploads (or every device's) since `since`. */
  async start(accountId: number, input: RetroHuntStartData, now = Date.now()): Promise<Outcome<RetroHunt>> {
    const errors: UserErrorData[] = [];
    const lists = await this.owned(accountId, IocList, input.lists, 'lists', errors);
    const devices = await this.owned(accountId, Device, input.devices, 'devices', errors);
    if (input.since && input.since.getTime() > now) errors.push(userError(UserErrorCode.INVALID, ['input', 'since'], 'since is in the future.'));
    if (errors.length) return failure(...errors);
    const target: HuntTarget = { devices, lists, listEntries: lists !== undefined, anyAddress: lists === undefined };
    const since = input.since?.getTime() ?? null;
    const cause = `Started by hand${lists ? ` for ${lists.length} list(s)` : ''}${devices ? ` on ${devices.length} device(s)` : ''}${since != null ? ` since ${new Date(since).toISOString()}` : ''}.`;
    // Refused before anything is stored when it is too big: the caller sees the count and the setting now.
    const affected = await this.affected(this.dataSource.manager, accountId, [target], NO_CHANGES, since, now);
    if (affected.uploads.length > this.options.maxUploads) {
      return failure(userError(UserErrorCode.INVALID, ['input'], this.refusal(affected.uploads.length)));
    }
    const id = await this.dataSource.transaction((em) => insertHunt(em, accountId, [target], cause, since ?? 0, now, now));
    try {
      await this.runDue(now);
    } catch (err) {
      // The hunt is stored: planning meets other planners (a deadlock on MySQL, a busy SQLite file), and a worker
      // plans it within RETRO_HUNT_INTERVAL_MS. Answering 503 would say that nothing was stored.
      if (!transientDbError(err)) throw err;
    }
    return success((await this.findMany(accountId, [id]))[0] as RetroHunt);
  }

  /** Plans every due hunt, then completes the running ones whose uploads are all done. Returns how many it planned. */
  async runDue(now = Date.now()): Promise<number> {
    let planned = 0;
    while (await this.planOne(now)) planned++;
    await this.complete(now);
    return planned;
  }

  /** Entry expiries that passed since the last check become retro-hunts of the policies that use their lists. */
  async checkExpiries(now = Date.now()): Promise<number> {
    return this.dataSource.transaction(async (em) => {
      const lock = dialectOf(em) === 'mysql' ? ' FOR UPDATE' : '';
      const [clock] = (await em.query(`SELECT expiry_checked_at FROM retro_hunt_clock WHERE id = 1${lock}`)) as Array<{ expiry_checked_at: number | string }>;
      const after = Number(clock.expiry_checked_at);
      if (now <= after) return 0;
      const rows: Array<{ account_id: number | string; list_id: number | string; range_start: string; range_end: string }> = await em.query(EXPIRED_ENTRIES, [
        after,
        now,
      ]);
      const byList = new Map<string, { accountId: number; listId: number; ranges: KeyRange[] }>();
      for (const r of rows) {
        const k = `${r.account_id}:${r.list_id}`;
        const g = byList.get(k) ?? { accountId: Number(r.account_id), listId: Number(r.list_id), ranges: [] };
        g.ranges.push({ start: r.range_start, end: r.range_end });
        byList.set(k, g);
      }
      const named: Array<{ account_id: number | string; list_id: number | string; name: string }> = await em.query(EXPIRED_DOMAINS, [after, now]);
      const byDomainList = new Map<string, { accountId: number; listId: number; names: string[] }>();
      for (const r of named) {
        const k = `${r.account_id}:${r.list_id}`;
        const g = byDomainList.get(k) ?? { accountId: Number(r.account_id), listId: Number(r.list_id), names: [] };
        g.names.push(r.name);
        byDomainList.set(k, g);
      }
      for (const g of byDomainList.values()) {
        await requestRetroHunt(
          em,
          g.accountId,
          {
            target: { lists: [g.listId] },
            domains: g.names,
            cause: `${g.names.length} entr${g.names.length === 1 ? 'y' : 'ies'} of list ${g.listId} expired.`,
          },
          now,
        );
      }
      for (const g of byList.values()) {
        await requestRetroHunt(
          em,
          g.accountId,
          {
            target: { lists: [g.listId] },
            ranges: g.ranges,
            cause: `${g.ranges.length} entr${g.ranges.length === 1 ? 'y' : 'ies'} of list ${g.listId} expired.`,
          },
          now,
        );
      }
      await execute(em, `UPDATE retro_hunt_clock SET expiry_checked_at = ? WHERE id = 1`, [now]);
      return byList.size + byDomainList.size;
    });
  }

  private refusal(n: number): string {
    return `This retro-hunt would re-run ${n} stored uploads; RETRO_HUNT_MAX_UPLOADS allows ${this.options.maxUploads}. Narrow it (lists, devices, since) or raise the setting.`;
  }

  private async owned<T extends { id: number }>(
    accountId: number,
    entity: new () => T,
    ids: (number | null)[] | null | undefined,
    field: string,
    errors: UserErrorData[],
  ): Promise<number[] | undefined> {
    if (ids == null) return undefined;
    const valid = ids.filter((id): id is number => id != null);
    const found = new Set(
      (valid.length ? await this.dataSource.getRepository(entity).findBy({ accountId, id: In(valid) } as never) : []).map((r) => (r as T).id),
    );
    ids.forEach((id, i) => {
      if (id == null || !found.has(id))
        errors.push(userError(UserErrorCode.NOT_FOUND, ['input', field, String(i)], `No ${field === 'lists' ? 'IOC list' : 'device'} with this ID.`));
    });
    return [...found];
  }

  /** Claims one due hunt and plans it, all in one transaction; false when none is due. */
  private async planOne(now: number): Promise<boolean> {
    return this.dataSource.transaction(async (em) => {
      const lock = dialectOf(em) === 'mysql' ? ' FOR UPDATE SKIP LOCKED' : '';
      const due: Array<{
        id: number | string;
        account_id: number | string;
        scope: string;
        since: number | string | null;
        created_at: number | string;
        changes: number | string;
      }> = await em.query(
        `SELECT id, account_id, scope, since, created_at, changes FROM retro_hunt WHERE status = ? AND not_before <= ? ORDER BY id LIMIT 1${lock}`,
        [RetroHuntStatus.QUEUED, now],
      );
      if (due.length === 0) return false;
      const hunt = due[0];
      const id = Number(hunt.id);
      const accountId = Number(hunt.account_id);
      const since = hunt.since == null || Number(hunt.since) === 0 ? null : Number(hunt.since);
      const targets = JSON.parse(hunt.scope) as HuntTarget[];
      const rangeRows: Array<{ target: number | string; range_start: string; range_end: string }> = await em.query(
        `SELECT target, range_start, range_end FROM retro_hunt_range WHERE retro_hunt_id = ?`,
        [id],
      );
      const ranges = new Map<number, KeyRange[]>();
      for (const r of rangeRows) {
        const list = ranges.get(Number(r.target)) ?? [];
        list.push({ start: r.range_start, end: r.range_end });
        ranges.set(Number(r.target), list);
      }
      const nameRows: Array<{ target: number | string; name: string }> = await em.query(`SELECT target, name FROM retro_hunt_domain WHERE retro_hunt_id = ?`, [
        id,
      ]);
      const domains = new Map<number, string[]>();
      for (const r of nameRows) {
        const list = domains.get(Number(r.target)) ?? [];
        list.push(r.name);
        domains.set(Number(r.target), list);
      }
      const { uploads, processing, examined, devices, upToDate } = await this.affected(em, accountId, targets, { ranges, domains }, since, now, {
        id,
        changes: Number(hunt.changes),
      });
      if (uploads.length > this.options.maxUploads) {
        await execute(em, `UPDATE retro_hunt SET status = ?, uploads_examined = ?, summary = ?, started_at = ?, finished_at = ? WHERE id = ?`, [
          RetroHuntStatus.REFUSED,
          examined,
          this.refusal(uploads.length),
          now,
          now,
          id,
        ]);
        return true;
      }
      const purged = await this.purgedBefore(em, accountId, devices, since);
      let queued = 0;
      // Each upload re-run waits for this hunt's run of it (retro_hunt_upload), read and locked at its latest (MariaDB
      // read the rows above from a snapshot; the worker finishing an upload takes the same row lock).
      const latest = async (ids: number[], status: LogUploadStatus): Promise<number[]> =>
        (
          (await em.query(`SELECT id FROM log_upload WHERE id IN (${ids.map(() => '?').join(',')}) AND status = ?${lock ? ' FOR UPDATE' : ''}`, [
            ...ids,
            status,
          ])) as Array<{ id: number | string }>
        ).map((r) => Number(r.id));
      const wait = async (ids: number[]) => {
        if (ids.length)
          await bulkInsert(
            em,
            'retro_hunt_upload',
            ['retro_hunt_id', 'upload_id'],
            ids.map((u) => [id, u]),
          );
        queued += ids.length;
      };
      // Being processed now, maybe against the lists before this change: the worker queues it again for this hunt
      // when it finishes (log-upload.processor.ts), with any other hunt planned meanwhile. One queued is matched
      // against the current lists.
      for (let i = 0; i < processing.length; i += 500) await wait(await latest(processing.slice(i, i + 500), LogUploadStatus.PROCESSING));
      // And those that finished since they were read.
      const finished = uploads.concat(processing);
      for (let i = 0; i < finished.length; i += 500) {
        const ids = await latest(finished.slice(i, i + 500), LogUploadStatus.COMPLETED);
        if (ids.length === 0) continue;
        await execute(
          em,
          `UPDATE log_upload SET status = ?, retro_hunt_id = ?, error = NULL, attempts = 0, lease_owner = NULL, lease_expires_at = NULL, finished_at = NULL,
                  progress_bytes = 0, progress_lines = 0
            WHERE id IN (${ids.map(() => '?').join(',')}) AND status = ?`,
          [LogUploadStatus.QUEUED, id, ...ids, LogUploadStatus.COMPLETED],
        );
        await wait(ids);
      }
      await execute(em, `DELETE FROM retro_hunt_range WHERE retro_hunt_id = ?`, [id]);
      if (nameRows.length) await execute(em, `DELETE FROM retro_hunt_domain WHERE retro_hunt_id = ?`, [id]);
      await execute(
        em,
        `UPDATE retro_hunt SET status = ?, uploads_examined = ?, uploads_rerun = ?, uploads_up_to_date = ?, uploads_purged = ?, summary = ?, started_at = ? WHERE id = ?`,
        [RetroHuntStatus.RUNNING, examined, queued, upToDate, purged.uploads, purged.note, now, id],
      );
      if (queued > 0) this.events.emit('queued');
      return true;
    });
  }

  /**
   * Running hunts none of whose uploads wait any more are complete; re-runs that never came (upload purged) are
   * counted. One statement finds the hunts with no upload queued or being processed for them (most running hunts, most
   * seconds, still have some); only those are locked and looked at again.
   */
  private async complete(now: number): Promise<void> {
    const idle: Array<{ id: number | string }> = await this.dataSource.query(
      `SELECT h.id FROM retro_hunt h WHERE h.status = ? AND NOT EXISTS (
         SELECT 1 FROM retro_hunt_upload w JOIN log_upload u ON u.id = w.upload_id WHERE w.retro_hunt_id = h.id AND u.status IN (?, ?))`,
      [RetroHuntStatus.RUNNING, LogUploadStatus.QUEUED, LogUploadStatus.PROCESSING],
    );
    for (const h of idle) await this.completeOne(Number(h.id), now);
  }

  /**
   * Completes the hunt when none of the uploads it waits for is queued or being processed. Its row is locked first
   * (as a re-run's count takes it, retro-hunt.progress.ts), and its counts are read after that: a re-run that
   * committed before is counted, one still in flight waits for this, or is waited for. The rows of the uploads that
   * failed stay until the upload runs again or is deleted (deleting them here would take an upload's row entries in
   * the other order from a device's deletion).
   */
  private async completeOne(id: number, now: number): Promise<void> {
    await this.dataSource.transaction(async (em) => {
      const lock = dialectOf(em) === 'mysql' ? ' FOR UPDATE' : '';
      const [h] = (await em.query(`SELECT status, uploads_rerun, uploads_done, summary FROM retro_hunt WHERE id = ?${lock}`, [id])) as Array<{
        status: string;
        uploads_rerun: number | string;
        uploads_done: number | string;
        summary: string | null;
      }>;
      if (h?.status !== RetroHuntStatus.RUNNING) return;
      // The uploads it still waits for, where they are (an upload deleted with its device took its row with it).
      const states: Array<{ status: string; n: number | string }> = await em.query(
        `SELECT u.status, COUNT(*) AS n FROM retro_hunt_upload w JOIN log_upload u ON u.id = w.upload_id WHERE w.retro_hunt_id = ? GROUP BY u.status`,
        [id],
      );
      const count = (s: string) => Number(states.find((r) => r.status === s)?.n ?? 0);
      if (count(LogUploadStatus.QUEUED) + count(LogUploadStatus.PROCESSING) > 0) return;
      const failed = count(LogUploadStatus.FAILED);
      // Queued for this hunt, then gone: deleted with their device before their re-run came.
      const deleted = Math.max(0, Number(h.uploads_rerun) - Number(h.uploads_done) - failed);
      const notes = [h.summary, failed ? `${failed} upload(s) failed on re-run; their hits are as the failure left them.` : null]
        .concat(deleted ? [`${deleted} upload(s) were deleted with their device before they could be re-run.`] : [])
        .filter(Boolean)
        .join(' ');
      await execute(em, `UPDATE retro_hunt SET status = ?, uploads_purged = uploads_purged + ?, summary = ?, finished_at = ? WHERE id = ?`, [
        RetroHuntStatus.COMPLETED,
        deleted,
        notes || null,
        now,
        id,
      ]);
    });
  }

  /**
   * What the retention purge took, before this hunt, from the devices it re-judges and inside its range (`since`):
   * their uploads could not be judged. Devices keep the count and the newest receipt time of what was purged
   * (retention.service.ts), so the count is exact for a hunt over everything stored and unknown for one from `since`
   * (the purged uploads' times between are not kept): then the summary names the period instead.
   */
  private async purgedBefore(em: EntityManager, accountId: number, devices: number[], since: number | null): Promise<{ uploads: number; note: string | null }> {
    if (devices.length === 0) return { uploads: 0, note: null };
    const mine = new Set(devices);
    const rows: Array<{ id: number | string; uploads_purged: number | string; uploads_purged_through: number | string }> = await em.query(
      `SELECT id, uploads_purged, uploads_purged_through FROM device WHERE account_id = ? AND uploads_purged_through IS NOT NULL`,
      [accountId],
    );
    const hit = rows.filter((r) => mine.has(Number(r.id)) && (since == null || Number(r.uploads_purged_through) >= since));
    if (hit.length === 0) return { uploads: 0, note: null };
    const through = new Date(hit.reduce((t, r) => Math.max(t, Number(r.uploads_purged_through)), 0)).toISOString();
    const why = `purged by retention (RETENTION_DAYS=${this.options.retentionDays}) before this hunt and could not be judged`;
    if (since != null)
      return { uploads: 0, note: `Uploads of ${hit.length} device(s) received from ${new Date(since).toISOString()} up to ${through} were ${why}.` };
    const uploads = hit.reduce((n, r) => n + Number(r.uploads_purged), 0);
    return { uploads, note: `${uploads} upload(s) of ${hit.length} device(s), received up to ${through}, were ${why}.` };
  }

  /**
   * The stored, finished uploads the targets may affect: of the targets' devices, received since `since`, whose
   * address set meets the target's ranges (an upload without a set, stored before sets existed, always may) or
   * whose name set meets its domain entries (an upload without one, parsed with DNS off, always may).
   */
  private async affected(
    em: EntityManager,
    accountId: number,
    targets: HuntTarget[],
    changes: TargetChanges,
    since: number | null,
    now: number,
    /** The hunt being planned, with the changes it covers: uploads matched after all of them are up to date. */
    hunt: { id: number; changes: number } | null = null,
  ): Promise<{ uploads: number[]; processing: number[]; examined: number; devices: number[]; upToDate: number }> {
    const resolved = await this.resolve(em, accountId, targets, changes);
    const devices = new Set(resolved.flatMap((t) => [...t.devices]));
    if (devices.size === 0) return { uploads: [], processing: [], examined: 0, devices: [], upToDate: 0 };
    const params: unknown[] = [accountId, LogUploadStatus.COMPLETED, LogUploadStatus.PROCESSING];
    let where = 'account_id = ? AND status IN (?, ?)';
    if (since != null) {
      where += ' AND received_at >= ?';
      params.push(since);
    }
    // Uploads received before the retention cutoff are the retention purge's: it may be deleting one's hits now, and
    // a re-run would find them all again as new. A hunt planned after the purge listed its uploads has a later cutoff
    // than the purge's, so it never queues one of them (one planned before queued them first, and the purge lists
    // only finished uploads).
    const cutoff = retentionCutoff(this.options.retentionDays, now);
    if (cutoff != null) {
      where += ' AND received_at >= ?';
      params.push(cutoff);
    }
    const rows: Array<{ id: number | string; device_id: number | string; status: string; judged_hunts: string | null }> = await em.query(
      `SELECT id, device_id, status, judged_hunts FROM log_upload WHERE ${where} ORDER BY id`,
      params,
    );
    const mine = rows.filter((r) => devices.has(Number(r.device_id)));
    // In progress: no address or name set to go by yet (or the last run's); every one of the devices' is re-judged.
    const processing = mine.filter((r) => r.status === LogUploadStatus.PROCESSING).map((r) => Number(r.id));
    // Matched after every change of this hunt (its run saw the hunt waiting with all of them): judged against the
    // lists as they are now already. Processed between a change and its hunt's planning, usually seconds later.
    const current = (r: { judged_hunts: string | null }) => hunt !== null && r.judged_hunts !== null && JSON.parse(r.judged_hunts)[hunt.id] === hunt.changes;
    const finished = mine.filter((r) => r.status === LogUploadStatus.COMPLETED);
    const upToDate = finished.filter(current).length;
    const candidates = finished.filter((r) => !current(r)).map((r) => ({ id: Number(r.id), deviceId: Number(r.device_id) }));
    const ids = candidates.map((c) => c.id);
    const sets = resolved.some((t) => t.hasRanges) ? await readAddressSets(em, ids) : new Map();
    const names = resolved.some((t) => t.domains) ? await readNameSets(em, ids) : new Map();
    const meets = (t: ResolvedTarget, u: { id: number }): boolean => {
      if (t.ranges === null) return true;
      if (t.hasRanges) {
        const set = sets.get(u.id);
        if (!set || intersects(set, t.ranges)) return true;
      }
      if (t.domains) {
        const set = names.get(u.id);
        if (!set || t.domains.meets(set)) return true;
      }
      return false;
    };
    const uploads = candidates.filter((u) => resolved.some((t) => t.devices.has(u.deviceId) && meets(t, u))).map((u) => u.id);
    return { uploads, processing, examined: candidates.length + processing.length + upToDate, devices: [...devices], upToDate };
  }

  private async resolve(em: EntityManager, accountId: number, targets: HuntTarget[], changes: TargetChanges): Promise<ResolvedTarget[]> {
    const devices: Array<{ id: number | string; policy_id: number | string }> = await em.query(`SELECT id, policy_id FROM device WHERE account_id = ?`, [
      accountId,
    ]);
    const links: Array<{ policy_id: number | string; ioc_list_id: number | string }> = await em.query(
      `SELECT pil.policy_id, pil.ioc_list_id FROM policy_ioc_list pil JOIN policy p ON p.id = pil.policy_id WHERE p.account_id = ?`,
      [accountId],
    );
    // Lists deleted since the change: a listEntries target can no longer read what they held.
    const named = [...new Set(targets.flatMap((t) => (t.listEntries ? (t.lists ?? []) : [])))];
    const existing = new Set<number>();
    if (named.length) {
      const rows: Array<{ id: number | string }> = await em.query(
        `SELECT id FROM ioc_list WHERE account_id = ? AND id IN (${named.map(() => '?').join(', ')})`,
        [accountId, ...named],
      );
      for (const r of rows) existing.add(Number(r.id));
    }
    const out: ResolvedTarget[] = [];
    for (const [i, t] of targets.entries()) {
      const set = new Set<number>();
      if (t.devices || t.policies) {
        for (const d of t.devices ?? []) set.add(d);
        const policies = new Set(t.policies ?? []);
        for (const d of devices) if (policies.has(Number(d.policy_id))) set.add(Number(d.id));
      } else if (t.lists) {
        const lists = new Set(t.lists);
        // The policies using the lists now, and those that used them at the change (detached since).
        const policies = new Set(links.filter((l) => lists.has(Number(l.ioc_list_id))).map((l) => Number(l.policy_id)));
        for (const p of t.usedBy ?? []) policies.add(p);
        for (const d of devices) if (policies.has(Number(d.policy_id))) set.add(Number(d.id));
      } else for (const d of devices) set.add(Number(d.id));
      // The other changes coalesced into this hunt that touch a list this target reads whole (listEntries).
      const sharing = t.listEntries && t.lists?.length ? [...targets.keys()].filter((j) => j !== i && targets[j].lists?.some((l) => t.lists!.includes(l))) : [];
      // Every upload of the target's devices is re-judged when the list's entries as they are now do not tell what
      // they matched: a list detached and deleted before this hunt (as "detach it first" leads a user to do), or a
      // change of the list coalesced into this hunt that names no entries (an import of more than MAX_HUNT_RANGES:
      // a detached list's removed entries would reach nobody).
      const unknown = t.listEntries && (t.lists?.some((l) => !existing.has(l)) || sharing.some((j) => targets[j].anyAddress));
      if (t.anyAddress || unknown) {
        out.push({ devices: set, ranges: null, hasRanges: true, domains: null });
        continue;
      }
      const keyRanges = new RangeSetBuilder();
      let names = changes.domains.get(i) ?? [];
      // A whole list can hold millions of entries: concatenated, never spread into a call. Its ranges come first,
      // in order, so that the set needs no sort when nothing else is added.
      if (t.listEntries && t.lists?.length) {
        await listRanges(em, t.lists, keyRanges);
        names = names.concat(await listDomains(em, t.lists));
        // The list's entries removed by changes coalesced into this hunt are gone from it now, and those changes
        // reach only the policies that still use the list: a detach and a removal together must still re-judge
        // what the removed entries matched through the detached policy.
        for (const j of sharing) {
          for (const r of changes.ranges.get(j) ?? []) keyRanges.add(r);
          names = names.concat(changes.domains.get(j) ?? []);
        }
      }
      for (const r of changes.ranges.get(i) ?? []) keyRanges.add(r);
      out.push({
        devices: set,
        ranges: keyRanges.build(),
        hasRanges: keyRanges.size > 0,
        domains: names.length ? await DomainChanges.of(names, this.threads) : null,
      });
    }
    return out;
  }
}

/**
 * Every entry's range of these lists, as they are now, into `out`, each list in range order (the set then has
 * nothing to sort for a single list), in pages with a turn of the event loop between them: a list can be a million.
 */
async function listRanges(em: EntityManager, lists: number[], out: RangeSetBuilder): Promise<void> {
  for (const list of lists) {
    let page: Array<{ id: number | string; range_start: string; range_end: string }> = await em.query(
      `SELECT id, range_start, range_end FROM ioc WHERE list_id = ? ORDER BY range_start, id LIMIT ${LIST_PAGE}`,
      [list],
    );
    while (page.length > 0) {
      for (const r of page) out.add({ start: r.range_start, end: r.range_end });
      if (page.length < LIST_PAGE) break;
      const last = page[page.length - 1];
      await nextTurn();
      page = await em.query(
        `SELECT id, range_start, range_end FROM ioc WHERE list_id = ? AND range_start >= ? AND (range_start > ? OR id > ?)
          ORDER BY range_start, id LIMIT ${LIST_PAGE}`,
        [list, last.range_start, last.range_start, last.id],
      );
    }
  }
}

/** Every domain entry's name of these lists (DOMAIN lists; none for IP lists), as they are now. */
async function listDomains(em: EntityManager, lists: number[]): Promise<string[]> {
  const out: string[] = [];
  for (const list of lists) {
    let after = 0;
    for (;;) {
      const page: Array<{ id: number | string; name: string }> = await em.query(
        `SELECT id, name FROM ioc_domain WHERE list_id = ? AND id > ? ORDER BY id LIMIT ${LIST_PAGE}`,
        [list, after],
      );
      if (page.length === 0) break;
      for (const r of page) out.push(r.name);
      after = Number(page[page.length - 1].id);
      await nextTurn();
    }
  }
  return out;
}
