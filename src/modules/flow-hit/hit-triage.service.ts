import { clip } from '../../common/text';
import { DataSource, In } from 'typeorm';
import { failure, Outcome, success, userError, UserErrorCode, UserErrorData } from '../../common/errors/user-error';
import { dialectOf, execute } from '../../db/bulk';
import { hitIdentity } from './flow-hit.columns';
import { recordHitChange } from './hit-change';
import { FlowHit } from './flow-hit.entity';
import { applyHitFilter, ResolvedHitFilter } from './hit-filter';
import { HitTriage } from './hit-triage.entity';
import { FalsePositiveScope, TriageStatus } from './hit-triage.enums';
import { FlowHitOrder } from './flow-hit.enums';
import type { AnalyticsFlowHits } from '../analytics/analytics-flow-hits';

/** Most hits one triage call may set (a filter that matches more is refused). */
export const MAX_TRIAGE = 10_000;
const MAX_NOTE = 2_000;
/** Triage rows per INSERT (7 parameters each). */
const UPSERT_ROWS = 1_000;

export interface TriageRequest {
  ids?: (number | null)[] | null;
  filter?: ResolvedHitFilter | null;
  status: TriageStatus;
  note?: string | null;
  /** FALSE_POSITIVE only: also allow each hit's matched entry in its device's policy (a retro-hunt re-judges the past). */
  allowInPolicy?: boolean | null;
  /** FALSE_POSITIVE only: allow each hit's matched entry in its device's policy, on its device, or for its internal host. */
  allow?: FalsePositiveScope | null;
}

/** One ALLOW entry a FALSE_POSITIVE verdict asks for: the network, and the device (and host) it is limited to, if any. */
export interface AllowRequest {
  cidr: string;
  scope: { deviceId: number; internalHost: string | null } | null;
}

/** What the FALSE_POSITIVE allow needs of the list services (ioc-list, policy, ioc). */
export interface AllowWriter {
  findOrCreateAllowList(accountId: number, policyId: number): Promise<number>;
  /**
   * Why the allow of these policies cannot be written, or null: the list a policy's verdicts write to exists under
   * its name but is no longer an address ALLOW list (an admin changed its kind). Asked before the verdict commits.
   */
  refusal(accountId: number, policyIds: readonly number[]): Promise<string | null>;
  addAllows(accountId: number, listId: number, allows: AllowRequest[], comment: string): Promise<void>;
}

export interface TriageResult {
  count: number;
  hits: FlowHit[];
}

/** A hit's stable identity as the triage table keys it. */
export function triageKey(
  h: Pick<FlowHit, 'uploadId' | 'protocol' | 'internalKey' | 'internalPort' | 'externalKey' | 'externalPort' | 'matchedSide' | 'iocId'>,
): string {
  return `${h.uploadId}|${hitIdentity(h)}`;
}

/**
 * Triage: a verdict per hit, stored by the hit's stable identity (hit-triage.entity.ts), so reprocessing and
 * retro-hunts keep it. Hits of another account look missing.
 */
export class HitTriageService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly allow: AllowWriter | null = null,
    /** With ANALYTICS_URL the hits are in ClickHouse: the hits to triage are read there (triage itself stays in SQL). */
    private readonly analyticsHits: AnalyticsFlowHits | null = null,
  ) {}

  /** The hits a filter matches in ClickHouse, a drill-down page at a time, up to one past the limit. */
  private async analyticsMatches(analytics: AnalyticsFlowHits, filter: ResolvedHitFilter): Promise<FlowHit[]> {
    const hits: FlowHit[] = [];
    let after: string | null = null;
    for (;;) {
      const page = await analytics.search(filter, FlowHitOrder.FIRST_SEEN_ASC, { first: 100, after });
      for (const e of page.edges) hits.push(e.node);
      if (!page.pageInfo.hasNextPage || hits.length > MAX_TRIAGE) return hits;
      after = page.pageInfo.endCursor ?? null;
    }
  }

  async triage(caller: { accountId: number; apiKeyId: number }, req: TriageRequest, now = Date.now()): Promise<Outcome<TriageResult>> {
    const errors: UserErrorData[] = [];
    if ((req.ids == null) === (req.filter == null)) errors.push(userError(UserErrorCode.REQUIRED, ['input'], 'Give either ids or filter.'));
    const note = req.note?.trim() || null;
    if (note && note.length > MAX_NOTE) errors.push(userError(UserErrorCode.TOO_LONG, ['input', 'note'], `Notes are at most ${MAX_NOTE} characters.`));
    if (req.allowInPolicy && req.allow != null && req.allow !== FalsePositiveScope.POLICY) {
      errors.push(userError(UserErrorCode.INVALID, ['input', 'allowInPolicy'], 'Give allow or allowInPolicy, not both with different scopes.'));
    }
    const allow = req.allow ?? (req.allowInPolicy ? FalsePositiveScope.POLICY : null);
    if (allow != null && req.status !== TriageStatus.FALSE_POSITIVE) {
      errors.push(
        userError(UserErrorCode.INVALID, ['input', req.allow != null ? 'allow' : 'allowInPolicy'], 'Only a FALSE_POSITIVE verdict can allow the entry.'),
      );
    }
    if (errors.length) return failure(...errors);
    let hits: FlowHit[];
    if (req.ids) {
      if (req.ids.length > MAX_TRIAGE) return failure(userError(UserErrorCode.INVALID, ['input', 'ids'], `At most ${MAX_TRIAGE} hits per call.`));
      const valid = req.ids.filter((id): id is number => id != null);
      const found = !valid.length
        ? []
        : this.analyticsHits
          ? (await this.analyticsHits.findMany(caller.accountId, valid)).filter((h): h is FlowHit => h !== null)
          : await this.dataSource.getRepository(FlowHit).findBy({ accountId: caller.accountId, id: In(valid) });
      const byId = new Map(found.map((h) => [h.id, h]));
      req.ids.forEach((id, i) => {
        if (id == null || !byId.has(id)) errors.push(userError(UserErrorCode.NOT_FOUND, ['input', 'ids', String(i)], 'No flow hit with this ID.'));
      });
      if (errors.length) return failure(...errors);
      hits = [...new Set(req.ids as number[])].map((id) => byId.get(id) as FlowHit);
    } else {
      hits = this.analyticsHits
        ? await this.analyticsMatches(this.analyticsHits, req.filter as ResolvedHitFilter)
        : await applyHitFilter(this.dataSource.getRepository(FlowHit).createQueryBuilder('h'), req.filter as ResolvedHitFilter)
            .orderBy('h.id')
            .take(MAX_TRIAGE + 1)
            .getMany();
      if (hits.length > MAX_TRIAGE) {
        return failure(userError(UserErrorCode.INVALID, ['input', 'filter'], `The filter matches more than ${MAX_TRIAGE} hits; narrow it.`));
      }
    }
    const policyOf = allow != null && this.allow && hits.length ? await this.policiesOf(caller.accountId, hits) : new Map<number, number>();
    if (allow != null && this.allow && policyOf.size) {
      // Refused before the verdict commits: a verdict stored and its allow failing after would answer an error for a
      // change that was made.
      const refusal = await this.allow.refusal(caller.accountId, [...new Set(policyOf.values())]);
      if (refusal) return failure(userError(UserErrorCode.INVALID_STATE, ['input', req.allow != null ? 'allow' : 'allowInPolicy'], refusal));
    }
    const gone = await this.dataSource.transaction(async (em) => {
      // The hits' uploads again, locked until the commit: one deleted since its hits were read (its device deleted,
      // the retention purge) took them with it, and their verdicts would have no upload to belong to.
      const mysql = dialectOf(em) === 'mysql';
      const uploads = [...new Set(hits.map((h) => h.uploadId))];
      const live = new Set<number>();
      for (let i = 0; i < uploads.length; i += UPSERT_ROWS) {
        const chunk = uploads.slice(i, i + UPSERT_ROWS);
        const rows: Array<{ id: number | string }> = await em.query(
          `SELECT id FROM log_upload WHERE id IN (${chunk.map(() => '?').join(', ')})${mysql ? ' LOCK IN SHARE MODE' : ''}`,
          chunk,
        );
        for (const r of rows) live.add(Number(r.id));
      }
      const gone = new Set(hits.filter((h) => !live.has(h.uploadId)).map((h) => h.id));
      // By IDs, a hit gone refuses the call as a missing ID does; a filter no longer matches it.
      if (gone.size && req.ids) return gone;
      hits = hits.filter((h) => !gone.has(h.id));
      // One upsert per hit, in (upload, identity) order. A DELETE of a row not there yet takes a gap lock on MySQL,
      // which a concurrent triage's INSERT waits for: two calls on the same hits deadlocked. Calls that lock the same
      // rows in different orders would too.
      const keys = hits.map((h) => ({ uploadId: h.uploadId, identity: hitIdentity(h) }));
      keys.sort((a, b) => a.uploadId - b.uploadId || (a.identity < b.identity ? -1 : a.identity > b.identity ? 1 : 0));
      const upsert = mysql
        ? ' ON DUPLICATE KEY UPDATE status = VALUES(status), note = VALUES(note), api_key_id = VALUES(api_key_id), updated_at = VALUES(updated_at)'
        : ' ON CONFLICT (upload_id, identity) DO UPDATE SET status = excluded.status, note = excluded.note, api_key_id = excluded.api_key_id, updated_at = excluded.updated_at';
      for (let i = 0; i < keys.length; i += UPSERT_ROWS) {
        const chunk = keys.slice(i, i + UPSERT_ROWS);
        await execute(
          em,
          `INSERT INTO flow_hit_triage (account_id, upload_id, identity, status, note, api_key_id, updated_at) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?, ?)').join(', ')}${upsert}`,
          chunk.flatMap((k) => [caller.accountId, k.uploadId, k.identity, req.status, note, caller.apiKeyId, now]),
        );
      }
      // The report store keeps each hit's status (filters on it): it re-reads the uploads whose hits changed verdict.
      for (const uploadId of new Set(hits.map((h) => h.uploadId))) await recordHitChange(em, { accountId: caller.accountId, uploadId, kind: 'TRIAGE' });
      return null;
    });
    if (gone) {
      return failure(
        ...(req.ids as number[]).flatMap((id, i) =>
          gone.has(id) ? [userError(UserErrorCode.NOT_FOUND, ['input', 'ids', String(i)], 'No flow hit with this ID.')] : [],
        ),
      );
    }
    if (allow != null && this.allow && hits.length) {
      // Each device's current policy gets an ALLOW entry for each matched CIDR, scoped as asked: its lists change, so
      // a retro-hunt follows (of the scope's devices only, when scoped).
      const requests = new Map<number, Map<string, AllowRequest>>();
      for (const h of hits) {
        const p = policyOf.get(h.deviceId);
        if (p === undefined) continue;
        const scope =
          allow === FalsePositiveScope.POLICY ? null : { deviceId: h.deviceId, internalHost: allow === FalsePositiveScope.HOST ? h.internalIp : null };
        const forPolicy = requests.get(p) ?? new Map<string, AllowRequest>();
        forPolicy.set(`${h.matchedCidr}|${scope?.deviceId ?? ''}|${scope?.internalHost ?? ''}`, { cidr: h.matchedCidr, scope });
        requests.set(p, forPolicy);
      }
      for (const [policyId, forPolicy] of requests) {
        const listId = await this.allow.findOrCreateAllowList(caller.accountId, policyId);
        await this.allow.addAllows(caller.accountId, listId, [...forPolicy.values()], clip(note ?? 'False positive', 500));
      }
    }
    return success({ count: hits.length, hits: hits.slice(0, 100) });
  }

  /** Each hit's device's current policy, by device ID (a device deleted since is left out). */
  private async policiesOf(accountId: number, hits: readonly FlowHit[]): Promise<Map<number, number>> {
    const ids = [...new Set(hits.map((h) => h.deviceId))];
    const devices: Array<{ id: number | string; policy_id: number | string }> = await this.dataSource.query(
      `SELECT id, policy_id FROM device WHERE account_id = ? AND id IN (${ids.map(() => '?').join(',')})`,
      [accountId, ...ids],
    );
    return new Map(devices.map((d) => [Number(d.id), Number(d.policy_id)]));
  }

  /** The triage of each hit (by triageKey), null when it has none; for the per-request loader. */
  async ofHits(accountId: number, keys: readonly string[]): Promise<(HitTriage | null)[]> {
    const uploads = [...new Set(keys.map((k) => Number(k.slice(0, k.indexOf('|')))))];
    const rows = uploads.length ? await this.dataSource.getRepository(HitTriage).findBy({ accountId, uploadId: In(uploads) }) : [];
    const byKey = new Map(rows.map((r) => [`${r.uploadId}|${r.identity}`, r]));
    return keys.map((k) => byKey.get(k) ?? null);
  }
}
