/**
 * The console's session: the access token lives in this module's memory only; the refresh token in the HttpOnly
 * cookie of /auth (src/graphql/session-cookie.ts), which survives a reload and which scripts cannot read.
 */
let accessToken: string | null = null;
let timer: ReturnType<typeof setTimeout> | undefined;
const listeners = new Set<(signedIn: boolean) => void>();

async function auth(path: string, body?: unknown): Promise<{ accessToken: string; expiresAt: string } | null> {
  const res = await fetch(`/auth/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-tenantplane-csrf': '1' },
    body: JSON.stringify(body ?? {}),
    credentials: 'same-origin',
  });
  if (!res.ok) return null;
  return res.json();
}

function hold(pair: { accessToken: string; expiresAt: string } | null) {
  accessToken = pair?.accessToken ?? null;
  clearTimeout(timer);
  // A new access token a minute before this one expires (or half its life when it is shorter).
  if (pair) {
    const left = new Date(pair.expiresAt).getTime() - Date.now();
    timer = setTimeout(() => void refresh(), Math.max(5_000, Math.min(left - 60_000, left / 2)));
  }
  for (const l of listeners) l(accessToken !== null);
  return accessToken !== null;
}

export const currentToken = () => accessToken;
export const onSessionChange = (fn: (signedIn: boolean) => void) => {
  listeners.add(fn);
  return () => listeners.delete(fn);
};
/**
 * After logIn or signUp: the access token is used at once, while the refresh token goes into the cookie (rotated
 * there, so the one this page saw is spent) and is forgotten here — the first page's data does not wait for the cookie.
 */
export async function startSession(pair: { accessToken: string; expiresAt: string; refreshToken: string }) {
  const handOver = auth('session', { refreshToken: pair.refreshToken });
  hold(pair);
  const rotated = await handOver;
  // Without the cookie the session would not survive a reload: end it now rather than later, by surprise.
  if (!rotated) return hold(null);
  accessToken = rotated.accessToken;
  return true;
}
/** At load, and before the access token expires. */
export const refresh = async () => hold(await auth('refresh'));
export async function endSession() {
  await auth('logout');
  hold(null);
}
