import { clip } from '../../common/text';
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { failure, Outcome, success, userError, UserErrorCode, UserErrorData } from '../../common/errors/user-error';
import { ConnectionData } from '../../common/pagination/connection';
import { keysetPaginate, KeysetPage } from '../../common/pagination/keyset';
import { execute } from '../../db/bulk';
import { beginImmediate } from '../../db/sqlite-serializer';
import { IocSourceConfig } from '../../config/config';
import { Logger, silentLogger } from '../../app/logger';
import { FeedImportService, ImportGuard } from '../ioc/feed-import.service';
import { ImportMode } from '../ioc/ioc.enums';
import { IocList } from '../ioc/ioc-list.entity';
import { FeedLine } from '../ioc/feed/feed-reader';
import { IocListKind } from '../ioc/ioc.enums';
import { detectStructured, mispManifestEvents, structuredLines } from './formats/structured-feed';
import { FeedSkippedLine } from '../ioc/feed/feed-import-tally';
import { IocSource, IocSourceFetch } from './ioc-source.entity';
import { IocSourceFetchOutcome, IocSourceFormat, IocSourceStatus } from './ioc-source.enums';
import { checkSourceUrl, FeedFetchError, fetchFeed, FetchLimits, isHeaderValue } from './feed-fetch';
import { detectFormat } from './feed-format';
import { HeaderSecretsError, openHeaders, sealHeaders } from './header-secrets';

export interface IocSourceHeaderData {
  name: string;
  value: string;
}

export interface IocSourceFields {
  url?: string | null;
  format?: IocSourceFormat | null;
  everySeconds?: number | null;
  /** Replaces every stored header when given. */
  headers?: IocSourceHeaderData[] | null;
}

export interface IocSourceFetchResult {
  source: IocSource;
  fetch: IocSourceFetch;
}

const MAX_HEADERS = 20;
/** What a TEXT column holds on MySQL (header values, skipped lines): 65,535 bytes. */
const TEXT_BYTES = 65_535;
/** Skipped lines kept per fetch, and the characters of each line's text kept. */
const MAX_SKIPPED = 100;
const SKIPPED_TEXT = 200;
/** The reason a fetch shows for an error that is a bug or a database failure: the details go to the log only. */
const MASKED = 'Internal error: the fetch could not be completed (the server log has the details: ioc_source.fetch_failed).';
/** Events of one MISP feed read per fetch. */
const MAX_MISP_EVENTS = 1000;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/;
// Headers the fetcher owns: a source may not set them.
const RESERVED = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'if-none-match', 'if-modified-since', 'accept-encoding']);

/**
 * Threat-intel sources: feeds fetched on a schedule (or now) and imported into their list with REPLACE through
 * FeedImportService, the one writer of list entries. One process fetches a source at a time (a lease row
 * update, as upload jobs are claimed); a failed or held fetch changes no entry and says why on the source.
 */
export class IocSourceService {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private readonly owner = randomUUID();

  constructor(
    private readonly dataSource: DataSource,
    private readonly feedImport: FeedImportService,
    private readonly config: IocSourceConfig,
    private readonly logger: Logger = silentLogger(),
  ) {}

  async findMany(accountId: number, ids: readonly number[]): Promise<(IocSource | null)[]> {
    const rows = ids.length
      ? await this.dataSource
          .getRepository(IocSource)
          .createQueryBuilder('s')
          .where('s.accountId = :accountId', { accountId })
          .andWhereInIds([...ids])
          .getMany()
      : [];
    const byId = new Map(rows.map((r) => [r.id, r]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  list(accountId: number, page: KeysetPage): Promise<ConnectionData<IocSource>> {
    const qb = this.dataSource.getRepository(IocSource).createQueryBuilder('s').where('s.accountId = :accountId', { accountId });
    return keysetPaginate(qb, 'iocSource', [{ expression: 's.id', direction: 'ASC', value: (s) => s.id }], page);
  }

  /** A source's fetches, newest first. */
  fetches(sourceId: number, page: KeysetPage): Promise<ConnectionData<IocSourceFetch>> {
    const qb = this.dataSource.getRepository(IocSourceFetch).createQueryBuilder('f').where('f.sourceId = :sourceId', { sourceId });
    return keysetPaginate(qb, 'iocSourceFetch', [{ expression: 'f.id', direction: 'DESC', value: (f) => f.id }], page);
  }

  async create(accountId: number, listId: number | null, fields: IocSourceFields): Promise<Outcome<IocSource>> {
    const list = listId == null ? null : await this.dataSource.getRepository(IocList).findOneBy({ id: listId, accountId });
    if (!list) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'list'], 'No IOC list with this ID.'));
    const errors = this.validate({ format: IocSourceFormat.AUTO, ...fields }, true);
    if (errors.length) return failure(...errors);
    const now = new Date();
    const headers = fields.headers ?? [];
    const source = this.dataSource.getRepository(IocSource).create({
      accountId,
      listId: list.id,
      url: storedUrl(fields.url!),
      format: fields.format ?? IocSourceFormat.AUTO,
      everySeconds: fields.everySeconds!,
      headerNames: JSON.stringify(headers.map((h) => h.name)),
      headerValues: this.sealed(headers),
      etag: null,
      lastModified: null,
      status: IocSourceStatus.NEW,
      statusReason: null,
      lastFetchedAt: null,
      nextFetchAt: now,
      leaseUntil: null,
      leaseOwner: null,
      createdAt: now,
      updatedAt: now,
    });
    return success(await this.dataSource.getRepository(IocSource).save(source));
  }

  async update(accountId: number, id: number | null, fields: IocSourceFields): Promise<Outcome<IocSource>> {
    const source = id == null ? null : await this.dataSource.getRepository(IocSource).findOneBy({ id, accountId });
    if (!source) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'id'], 'No IOC source with this ID.'));
    const errors = this.validate(fields, false);
    if (errors.length) return failure(...errors);
    const changes: Partial<IocSource> = { updatedAt: new Date() };
    if (fields.url != null && storedUrl(fields.url) !== source.url) Object.assign(changes, { url: storedUrl(fields.url), etag: null, lastModified: null });
    if (fields.format != null) Object.assign(changes, { format: fields.format, etag: null, lastModified: null });
    if (fields.everySeconds != null) {
      changes.everySeconds = fields.everySeconds;
      const base = source.lastFetchedAt?.getTime() ?? Date.now();
      changes.nextFetchAt = new Date(base + fields.everySeconds * 1000);
    }
    if (fields.headers != null) {
      changes.headerNames = JSON.stringify(fields.headers.map((h) => h.name));
      changes.headerValues = this.sealed(fields.headers);
    }
    await this.dataSource.getRepository(IocSource).update({ id: source.id }, changes);
    return success(Object.assign(source, changes));
  }

  /**
   * Deletes at once, even while the source is being fetched: that fetch then imports nothing (its import checks, in
   * its transaction and with the source's row locked, that the source is still there) and records nothing, and
   * iocSourceFetchNow answers NOT_FOUND. A delete that comes while that import's transaction runs waits for it: the
   * import stands, its record goes with the source, and iocSourceFetchNow answers NOT_FOUND saying the list holds
   * the fetched entries.
   */
  async delete(accountId: number, id: number | null): Promise<Outcome<IocSource>> {
    const source = id == null ? null : await this.dataSource.getRepository(IocSource).findOneBy({ id, accountId });
    if (!source) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'id'], 'No IOC source with this ID.'));
    await this.dataSource.getRepository(IocSource).delete({ id: source.id });
    return success(source);
  }

  private validate(fields: IocSourceFields, creating: boolean): UserErrorData[] {
    const errors: UserErrorData[] = [];
    if (creating || fields.url != null) {
      const url = (fields.url ?? '').trim();
      const bad =
        url.length === 0 ? 'Give the feed URL.' : (checkSourceUrl(url) ?? (storedUrl(url).length > 2000 ? 'URLs are at most 2000 characters.' : null));
      if (bad) errors.push(userError(UserErrorCode.INVALID, ['input', 'url'], bad));
    }
    if (creating || fields.everySeconds != null) {
      const every = fields.everySeconds;
      if (every == null || !Number.isInteger(every) || every < this.config.minEverySeconds || every > 30 * 86_400) {
        errors.push(userError(UserErrorCode.INVALID, ['input', 'everySeconds'], `Fetch every ${this.config.minEverySeconds} s to 30 days.`));
      }
    }
    const headers = fields.headers ?? [];
    if (headers.length > MAX_HEADERS) errors.push(userError(UserErrorCode.INVALID, ['input', 'headers'], `At most ${MAX_HEADERS} headers.`));
    const names = new Set<string>();
    headers.slice(0, MAX_HEADERS).forEach((h, i) => {
      const field = ['input', 'headers', String(i)];
      const key = h.name.toLowerCase();
      if (!HEADER_NAME.test(h.name) || RESERVED.has(key)) {
        errors.push(userError(UserErrorCode.INVALID, [...field, 'name'], `"${h.name.slice(0, 100)}" is not a header a source may set.`));
      } else if (names.has(key)) errors.push(userError(UserErrorCode.INVALID, [...field, 'name'], 'Each header once.'));
      names.add(key);
      // The value is a secret: never echoed, not even in an error. The characters are those Node's http sends
      // (http.validateHeaderValue): a value it refuses would fail every fetch.
      if (h.value.length > 4000) errors.push(userError(UserErrorCode.INVALID, [...field, 'value'], 'Header values are one line of at most 4000 characters.'));
      else if (!isHeaderValue(h.value)) {
        errors.push(
          userError(
            UserErrorCode.INVALID,
            [...field, 'value'],
            'Header values may hold only visible ASCII and Latin-1 characters, spaces and tabs (no control characters, no other Unicode).',
          ),
        );
      }
    });
    if (errors.length === 0 && headers.length > 0 && Buffer.byteLength(this.sealed(headers)) > TEXT_BYTES) {
      errors.push(userError(UserErrorCode.INVALID, ['input', 'headers'], `The headers take more than ${TEXT_BYTES} bytes together once stored.`));
    }
    return errors;
  }

  /** Fetches a source now (the caller's). Refused while another process holds it. */
  async fetchNow(accountId: number, id: number | null): Promise<Outcome<IocSourceFetchResult>> {
    const source = id == null ? null : await this.dataSource.getRepository(IocSource).findOneBy({ id, accountId });
    if (!source) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'id'], 'No IOC source with this ID.'));
    const result = await this.fetchLeased(source.id);
    if (result === 'busy')
      return failure(userError(UserErrorCode.INVALID_STATE, ['input', 'id'], 'The source is being fetched right now; try again when it finishes.'));
    if (result === 'gone') {
      return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'id'], 'The source was deleted while it was being fetched; nothing was imported.'));
    }
    if (result === 'goneAfterImport') {
      return failure(
        userError(UserErrorCode.NOT_FOUND, ['input', 'id'], 'The source was deleted after its fetch was imported; the list holds the fetched entries.'),
      );
    }
    return success(result);
  }

  /**
   * Fetches every due source this process can lease, one after another. A source whose fetch throws (it records
   * its own failures, so only a failing database gets here) is logged and the others are still fetched.
   */
  async runDue(now = Date.now()): Promise<number> {
    const due: Array<{ id: number | string }> = await this.dataSource.query(
      `SELECT id FROM ioc_source WHERE next_fetch_at <= ? AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_fetch_at LIMIT 20`,
      [now, now],
    );
    let done = 0;
    for (const row of due) {
      try {
        if (typeof (await this.fetchLeased(Number(row.id))) === 'object') done++;
      } catch (err) {
        this.logger.error({ err, event: 'ioc_source.poll_source_failed', source: Number(row.id) }, 'IOC source fetch could not be recorded');
      }
    }
    return done;
  }

  /** Polls for due sources every pollMs (the server starts it with its worker). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.runDue()
        .then(() => undefined)
        .catch((err) => this.logger.error({ err, event: 'ioc_source.poll_failed' }, 'IOC source poll failed'))
        .finally(() => {
          this.running = null;
        });
    }, this.config.pollMs);
    this.timer.unref();
  }

  /**
   * Stops polling. A fetch in progress gets `graceMs` to finish; past that the process may exit under it: its
   * import transaction rolls back (the list keeps its entries) and the lease lapses, so another process fetches
   * the source again later.
   */
  async stop(graceMs = 2_000): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (!this.running) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.running, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
  }

  /**
   * Leases, fetches, records and releases: `busy` when another process holds the lease, `gone` when the source
   * was deleted before the fetch could import, `goneAfterImport` when it was deleted after the import committed
   * (a delete that waited for it) and before the fetch could record.
   */
  private async fetchLeased(id: number): Promise<IocSourceFetchResult | 'busy' | SourceGone> {
    const now = Date.now();
    const lease = { claimedAt: now, until: now + this.config.leaseMs };
    const claimed = await execute(
      this.dataSource.manager,
      `UPDATE ioc_source SET lease_until = ?, lease_owner = ? WHERE id = ? AND (lease_until IS NULL OR lease_until < ?)`,
      [lease.until, this.owner, id, now],
    );
    if (claimed !== 1) return 'busy';
    try {
      const source = await this.dataSource.getRepository(IocSource).findOneBy({ id });
      if (!source) return 'gone';
      return await this.fetchOne(source, lease);
    } finally {
      // This lease only: once it lapsed, a later fetch of this same process may hold the source under a lease of its own.
      await execute(
        this.dataSource.manager,
        `UPDATE ioc_source SET lease_until = NULL, lease_owner = NULL WHERE id = ? AND lease_owner = ? AND lease_until = ?`,
        [id, this.owner, lease.until],
      );
    }
  }

  /** The body's records in its format; a structured document is parsed whole (it is within the size limit). */
  private async linesOf(
    file: string,
    format: Exclude<IocSourceFormat, IocSourceFormat.AUTO | IocSourceFormat.TEXT> | 'JSON',
    source: IocSource,
    limits: FetchLimits,
  ): Promise<AsyncIterable<FeedLine>> {
    let doc: unknown;
    try {
      doc = parseJson(await fs.promises.readFile(file, 'utf8'));
    } catch (err) {
      throw new FeedFetchError(`Not valid JSON: ${(err as Error).message.slice(0, 200)}.`);
    }
    const events = mispManifestEvents(doc);
    if (events && (format === 'JSON' || format === IocSourceFormat.MISP_EVENT)) return asAsync(await this.mispFeed(source, events, limits));
    const found = detectStructured(doc);
    if (!found) throw new FeedFetchError('Unknown format: a JSON document that is neither a STIX bundle, a MISP event nor a MISP warninglist.');
    if (format !== 'JSON' && format !== found) throw new FeedFetchError(`The body is a ${found.replace('_', ' ')} document, not ${format.replace('_', ' ')}.`);
    if (found === 'MISP_WARNINGLIST') {
      const list = await this.dataSource.getRepository(IocList).findOneBy({ id: source.listId });
      if (list && list.kind !== IocListKind.ALLOW) {
        throw new FeedFetchError('A MISP warninglist names known-benign addresses: point this source at an ALLOW list, not a BLOCK list.');
      }
    }
    return asAsync(structuredLines(doc, found));
  }

  /** The header values to send; a row the configured key cannot open fails the fetch with the reason. */
  private headersOf(source: IocSource): Record<string, string> {
    try {
      return openHeaders(source.headerValues, this.config.secretsKey);
    } catch (err) {
      if (err instanceof HeaderSecretsError) throw new FeedFetchError(err.message);
      throw err;
    }
  }

  /**
   * A MISP feed: the manifest's events, each fetched beside it (`<uuid>.json`, same limits and deadline, the
   * bytes of all of them within the size limit), their attributes numbered as one sequence of records. The
   * source's headers go with each event file only as far as the source's own origin (a redirect elsewhere
   * gets none).
   */
  private async mispFeed(source: IocSource, events: string[], limits: FetchLimits): Promise<FeedLine[]> {
    if (events.length > MAX_MISP_EVENTS) throw new FeedFetchError(`The MISP feed lists ${events.length} events; at most ${MAX_MISP_EVENTS} are read.`);
    const headers = this.headersOf(source);
    const lines: FeedLine[] = [];
    let total = 0;
    for (const uuid of events) {
      const url = new URL(`${uuid}.json`, source.url).href;
      const answer = await fetchFeed({ url, headers, headersFor: source.url }, { ...limits, maxBytes: limits.maxBytes - total });
      if (answer.kind !== 'body') throw new FeedFetchError(`MISP event ${uuid}: unexpected HTTP ${answer.status}.`);
      try {
        total += (await fs.promises.stat(answer.file)).size;
        let doc: unknown;
        try {
          doc = parseJson(await fs.promises.readFile(answer.file, 'utf8'));
        } catch (err) {
          throw new FeedFetchError(`MISP event ${uuid}: not valid JSON: ${(err as Error).message.slice(0, 200)}.`);
        }
        if (detectStructured(doc) !== 'MISP_EVENT') throw new FeedFetchError(`MISP event ${uuid}: not a MISP event.`);
        for (const line of structuredLines(doc, 'MISP_EVENT')) lines.push({ ...line, lineNumber: lines.length + 1, text: `${uuid} ${line.text}` });
      } finally {
        await fs.promises.rm(path.dirname(answer.file), { recursive: true, force: true });
      }
    }
    return lines;
  }

  /**
   * One fetch under the lease claimed at `lease.claimedAt` (held until `lease.until`): downloads get half of
   * IOC_SOURCE_LEASE_MS in all, and the import checks in its transaction that the lease is still this fetch's, so
   * a fetch never changes a list past its lease. Every failure is recorded as a FAILED fetch (one that is a bug or
   * a database error with a masked reason, the error itself logged); the source's state only while the lease is
   * still this fetch's. `gone`/`goneAfterImport` when the source was deleted meanwhile (before or after the import
   * committed).
   */
  private async fetchOne(source: IocSource, lease: Lease): Promise<IocSourceFetchResult | SourceGone> {
    const started = new Date();
    const downloadMs = Math.floor(this.config.leaseMs / 2);
    const limits: FetchLimits = { ...this.config, deadline: { at: lease.claimedAt + downloadMs, ms: downloadMs } };
    const fetch: Partial<IocSourceFetch> = {
      sourceId: source.id,
      startedAt: started,
      httpStatus: null,
      bytes: 0,
      added: 0,
      removed: 0,
      unchanged: 0,
      skipped: 0,
      skippedLines: null,
      error: null,
    };
    const sourceChanges: Partial<IocSource> = {};
    let file: string | null = null;
    // The import committed: the list holds the feed, whatever happens to the source or its record after.
    let imported = false;
    try {
      // A list with a grace period asks for the whole feed every time: a 304 would not say which entries are still
      // in it, and its entries would age out while the feed stayed the same (#21 item 2).
      const ageing = await this.dataSource.getRepository(IocList).findOne({ select: { ageingGraceSeconds: true }, where: { id: source.listId } });
      const conditional = ageing?.ageingGraceSeconds == null;
      const answer = await fetchFeed(
        {
          url: source.url,
          headers: this.headersOf(source),
          etag: conditional ? source.etag : null,
          lastModified: conditional ? source.lastModified : null,
        },
        limits,
      );
      fetch.httpStatus = answer.status;
      fetch.bytes = answer.bytes;
      if (answer.kind === 'notModified') {
        fetch.outcome = IocSourceFetchOutcome.NOT_MODIFIED;
      } else {
        file = answer.file;
        const head = await readHead(answer.file);
        const detected = detectFormat(head, source.format, answer.contentType);
        if (!detected.ok) throw new FeedFetchError(detected.reason, answer.status, answer.bytes);
        const holdBelow = this.config.holdBelowRatio;
        const guard: ImportGuard = ({ current, incoming }) =>
          holdBelow > 0 && current > 0 && incoming < current * holdBelow
            ? `the feed has ${incoming} entries and the list ${current}: a REPLACE would remove more than ${Math.round((1 - holdBelow) * 100)}% of it; held for review (IOC_SOURCE_HOLD_BELOW_PERCENT)`
            : null;
        const beforeWrite = (em: EntityManager) => this.stillLeased(em, source.id, lease.until);
        // Text goes through importFile, which reads it in the list's own formats (IP feeds, or domain feeds for a
        // DOMAIN list); structured documents become records for importLines.
        const outcome =
          detected.format === IocSourceFormat.TEXT
            ? await this.feedImport.importFile(source.accountId, source.listId, { path: answer.file, bytes: answer.bytes }, ImportMode.REPLACE, undefined, {
                guard,
                beforeWrite,
              })
            : await this.feedImport.importLines(
                source.accountId,
                source.listId,
                await this.linesOf(answer.file, detected.format, source, limits),
                answer.bytes,
                ImportMode.REPLACE,
                { guard, beforeWrite },
              );
        if (!outcome.ok) {
          const message = outcome.errors.map((e) => e.message).join(' ');
          if (outcome.errors.some((e) => e.code === UserErrorCode.INVALID_STATE)) {
            fetch.outcome = IocSourceFetchOutcome.HELD;
            fetch.error = clip(message, 1000);
          } else throw new FeedFetchError(message, answer.status, answer.bytes);
        } else {
          imported = true;
          const r = outcome.value;
          Object.assign(fetch, {
            outcome: IocSourceFetchOutcome.IMPORTED,
            added: r.added,
            removed: r.removed,
            unchanged: r.duplicatesInList,
            skipped: r.skipped,
            skippedLines: skippedLinesJson(r.skippedLines),
          });
          // Validators only once the body is in the list: a failed import must be fetched in full next time. One
          // that does not fit its column is not kept (nor sent): the next request asks with the other, or in full.
          Object.assign(sourceChanges, { etag: this.validator('etag', answer.etag), lastModified: this.validator('lastModified', answer.lastModified) });
        }
      }
    } catch (err) {
      if (err instanceof SourceDeletedError) {
        this.logger.info({ event: 'ioc_source.deleted_during_fetch', source: source.id, list: source.listId }, 'IOC source deleted during its fetch');
        return 'gone';
      }
      if (!(err instanceof FeedFetchError))
        this.logger.error({ err, event: 'ioc_source.fetch_failed', source: source.id, list: source.listId, url: source.url }, MASKED);
      Object.assign(fetch, {
        outcome: IocSourceFetchOutcome.FAILED,
        error: err instanceof FeedFetchError ? clip(err.message, 1000) : MASKED,
        httpStatus: err instanceof FeedFetchError ? (err.status ?? fetch.httpStatus) : fetch.httpStatus,
        bytes: (err instanceof FeedFetchError && err.bytes) || fetch.bytes,
        added: 0,
        removed: 0,
        unchanged: 0,
        skipped: 0,
        skippedLines: null,
      });
    } finally {
      if (file) await fs.promises.rm(path.dirname(file), { recursive: true, force: true });
    }
    const finished = new Date();
    fetch.finishedAt = finished;
    const status =
      fetch.outcome === IocSourceFetchOutcome.FAILED
        ? IocSourceStatus.FAILING
        : fetch.outcome === IocSourceFetchOutcome.HELD
          ? IocSourceStatus.HELD
          : IocSourceStatus.OK;
    // A failed fetch waits for the source's schedule too (at least IOC_SOURCE_MIN_EVERY_S): a source that fails
    // every time never comes first in every poll.
    Object.assign(sourceChanges, {
      status,
      statusReason: status === IocSourceStatus.OK ? null : fetch.error,
      lastFetchedAt: finished,
      nextFetchAt: new Date(finished.getTime() + source.everySeconds * 1000),
      updatedAt: finished,
    });
    let recorded: Recorded | null;
    try {
      recorded = await this.record(source.id, lease, fetch, sourceChanges);
    } catch (err) {
      // The summary itself could not be stored: store the failure, masked, so the source still waits its turn.
      this.logger.error({ err, event: 'ioc_source.fetch_failed', source: source.id, list: source.listId, url: source.url }, MASKED);
      Object.assign(fetch, { outcome: IocSourceFetchOutcome.FAILED, error: MASKED, skippedLines: null });
      for (const key of ['etag', 'lastModified'] as const) delete sourceChanges[key];
      Object.assign(sourceChanges, { status: IocSourceStatus.FAILING, statusReason: MASKED });
      recorded = await this.record(source.id, lease, fetch, sourceChanges);
    }
    if (!recorded) {
      this.logger.info({ event: 'ioc_source.deleted_during_fetch', source: source.id, list: source.listId, imported }, 'IOC source deleted during its fetch');
      return imported ? 'goneAfterImport' : 'gone';
    }
    const saved = recorded.fetch;
    if (recorded.current) {
      this.logger.warn(
        { event: 'ioc_source.lease_lost', source: source.id, list: source.listId, outcome: saved.outcome },
        'IOC source fetch recorded without changing the source: its lease had passed to another fetch',
      );
    }
    // The URL, never the headers: they hold secrets.
    this.logger.info(
      {
        event: 'ioc_source.fetched',
        source: source.id,
        list: source.listId,
        url: source.url,
        outcome: saved.outcome,
        httpStatus: saved.httpStatus,
        added: saved.added,
        removed: saved.removed,
        error: saved.error,
      },
      'IOC source fetched',
    );
    return { source: recorded.current ?? Object.assign(source, sourceChanges), fetch: saved };
  }

  /**
   * In the import's transaction, before it writes: the source's row, locked, must still be there and still be
   * leased by this fetch (not lapsed, not taken over by another process).
   */
  private async stillLeased(em: EntityManager, id: number, until: number): Promise<void> {
    const row = await lockSource(em, id);
    if (!row) throw new SourceDeletedError();
    if (row.leaseOwner !== this.owner || row.leaseUntil !== until) {
      throw new FeedFetchError(
        'The fetch lost its lease (IOC_SOURCE_LEASE_MS) before its import: another process fetches the source now. Nothing was imported.',
      );
    }
    if (Date.now() > until) throw new FeedFetchError('The fetch outlasted its lease (IOC_SOURCE_LEASE_MS) before its import. Nothing was imported.');
  }

  /**
   * Stores a fetch's summary and, while the lease is still this fetch's, the source's new state, together; null
   * when the source is gone. Past the lease another fetch holds the source (another process, or a later one of this
   * process) and what it records stands: the summary alone is stored, and `current` is the source as it is.
   */
  private record(id: number, lease: Lease, fetch: Partial<IocSourceFetch>, changes: Partial<IocSource>): Promise<Recorded | null> {
    return beginImmediate(() =>
      this.dataSource.transaction(async (em) => {
        const row = await lockSource(em, id);
        if (!row) return null;
        const saved = await em.getRepository(IocSourceFetch).save(em.getRepository(IocSourceFetch).create(fetch));
        if (row.leaseOwner !== this.owner || row.leaseUntil !== lease.until) {
          return { fetch: saved, current: await em.getRepository(IocSource).findOneByOrFail({ id }) };
        }
        await em.getRepository(IocSource).update({ id }, changes);
        return { fetch: saved, current: null };
      }),
    );
  }

  /** A validator from the answer, when it fits its column and can be sent back as it is; else null. */
  private validator(property: 'etag' | 'lastModified', value: string | null): string | null {
    if (value == null || !isHeaderValue(value)) return null;
    const length = Number(this.dataSource.getMetadata(IocSource).findColumnWithPropertyName(property)?.length);
    return Number.isFinite(length) && length > 0 && [...value].length > length ? null : value;
  }

  /** Header values as stored (sealed under the key when there is one). */
  private sealed(headers: IocSourceHeaderData[]): string {
    return sealHeaders(Object.fromEntries(headers.map((h) => [h.name, h.value])), this.config.secretsKey);
  }
}

/** The lease a fetch claimed (epoch ms), its `until` the value written to the source's row. */
interface Lease {
  claimedAt: number;
  until: number;
}

/** A deleted source's fetch: `gone` imported nothing; `goneAfterImport` committed its import before the delete. */
type SourceGone = 'gone' | 'goneAfterImport';

/** A fetch's stored summary; `current`: the source as another fetch left it, when its lease had passed (else null). */
interface Recorded {
  fetch: IocSourceFetch;
  current: IocSource | null;
}

/** The source was deleted while it was being fetched: nothing is imported, nothing recorded. */
class SourceDeletedError extends Error {
  constructor() {
    super('The source was deleted while it was being fetched.');
    this.name = 'SourceDeletedError';
  }
}

/** A source's lease, its row locked for the transaction (SQLite: the transaction's IMMEDIATE lock); null when gone. */
function lockSource(em: EntityManager, id: number): Promise<Pick<IocSource, 'id' | 'leaseOwner' | 'leaseUntil'> | null> {
  const qb = em.getRepository(IocSource).createQueryBuilder('s').select(['s.id', 's.leaseOwner', 's.leaseUntil']).where('s.id = :id', { id });
  if (em.connection.options.type !== 'better-sqlite3') qb.setLock('pessimistic_write');
  return qb.getOne();
}

/** The URL as it will be fetched (the parsed href: the parser drops tabs and line breaks, reads `\` as `/`). */
function storedUrl(text: string): string {
  try {
    return new URL(text.trim()).href;
  } catch {
    return text.trim();
  }
}

/** A document's JSON, after a UTF-8 byte order mark if it has one (JSON.parse refuses it). */
function parseJson(text: string): unknown {
  return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
}

/**
 * The skipped lines a fetch stores: the first MAX_SKIPPED, each line's text cut to SKIPPED_TEXT characters, as
 * many as fit a TEXT column (a text feed's lines may be 4 KB each).
 */
function skippedLinesJson(lines: readonly FeedSkippedLine[]): string {
  const kept = lines
    .slice(0, MAX_SKIPPED)
    .map((l) => ({ ...l, text: l.text.length > SKIPPED_TEXT ? `${clip(l.text, SKIPPED_TEXT)}...` : l.text, reason: clip(l.reason, 1000) }));
  let json = JSON.stringify(kept);
  while (kept.length > 0 && Buffer.byteLength(json) > TEXT_BYTES) {
    kept.pop();
    json = JSON.stringify(kept);
  }
  return json;
}

/** Records of a sync generator, as the async iterable the import reads. */
async function* asAsync<T>(items: Iterable<T>): AsyncGenerator<T> {
  yield* items;
}

async function readHead(file: string): Promise<Buffer> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.alloc(8192);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** The skipped lines a fetch stored. */
export function skippedLinesOf(fetch: IocSourceFetch): FeedSkippedLine[] {
  return fetch.skippedLines ? (JSON.parse(fetch.skippedLines) as FeedSkippedLine[]) : [];
}

/** Header names of a source (values are never returned). */
export function headerNamesOf(source: IocSource): string[] {
  return JSON.parse(source.headerNames) as string[];
}
