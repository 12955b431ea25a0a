/**
 * Which access tokens are refused before they expire, answered from memory on every request (no SQL, no round
 * trip): the sessions (refresh-token families, a token's `sid`) revoked within an access token's lifetime, and the
 * deactivated users.
 *
 * Kept current by the database's notices (sql/0013 `sessionRevoked`, sql/0019 `userDeactivated` / `userReactivated`,
 * through the EventHub's one LISTEN connection), by the mutations of this process once they committed (so the
 * next request here is refused whatever the notice's timing), and loaded from the database at start-up and again
 * after every LISTEN reconnect (notices sent while nobody listened are lost). A revoked session is forgotten once
 * every token issued before its revocation has expired; a deactivated user is remembered until reactivated.
 */
export interface RevocationSnapshot {
  /** Sessions revoked since `since`, with when. */
  sessions: { id: string; revokedAt: Date }[];
  /** Every deactivated user. */
  users: string[];
}

export class SessionRevocations {
  private readonly sessions = new Map<string, number>();
  private readonly users = new Set<string>();
  private lastPrune = Date.now();
  /** (De)activations heard while a reload was in flight: replayed over its snapshot, which may predate them. */
  private heardDuringLoad?: Array<[string, boolean]>;

  constructor(
    /** The database's view, from `since` on (run on a privileged connection: app_private). */
    private readonly load: (since: Date) => Promise<RevocationSnapshot>,
    /** ACCESS_TOKEN_TTL_SECONDS, in ms: how long a revoked session's tokens can still be presented. */
    private readonly tokenTtlMs: number,
  ) {}

  /** Loads revocations of the last token lifetime (start-up), or since `since` (after a reconnect). */
  async reload(since?: Date) {
    const from = since && since.getTime() > Date.now() - this.tokenTtlMs ? since : new Date(Date.now() - this.tokenTtlMs - 60_000);
    const heard: Array<[string, boolean]> = [];
    this.heardDuringLoad = heard;
    let snapshot: RevocationSnapshot;
    try {
      snapshot = await this.load(from);
    } finally {
      if (this.heardDuringLoad === heard) this.heardDuringLoad = undefined;
    }
    for (const s of snapshot.sessions) this.sessionRevoked(s.id, s.revokedAt.getTime());
    // Deactivations are a full list: a reactivation missed while LISTEN was down is picked up too.
    this.users.clear();
    for (const u of snapshot.users) this.users.add(u);
    for (const [id, active] of heard) {
      if (active) this.users.delete(id);
      else this.users.add(id);
    }
  }

  sessionRevoked(id: string, at = Date.now()) {
    if (!this.sessions.has(id)) this.sessions.set(id, at);
  }

  userDeactivated(id: string) {
    this.users.add(id);
    this.heardDuringLoad?.push([id, false]);
  }

  userReactivated(id: string) {
    this.users.delete(id);
    this.heardDuringLoad?.push([id, true]);
  }

  /** True when a token of this user (and session, when it names one) must be refused. */
  refuses(userId: string, sessionId?: string | null): boolean {
    this.prune();
    return this.users.has(userId) || (!!sessionId && this.sessions.has(sessionId));
  }

  private prune() {
    const now = Date.now();
    if (now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    const horizon = now - this.tokenTtlMs - 60_000;
    for (const [id, at] of this.sessions) if (at < horizon) this.sessions.delete(id);
  }
}
