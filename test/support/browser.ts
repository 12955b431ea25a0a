import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium, type Browser, type Page } from 'playwright-core';

/**
 * Debian's Chromium (`apt-get install chromium`; .ci/run installs it), driven by playwright-core: no browser
 * download. CHROMIUM_PATH overrides where it is.
 */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p)) ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM_PATH)) throw new Error(`no Chromium at ${CHROMIUM_PATH}: apt-get install chromium (or set CHROMIUM_PATH)`);
  // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
}

/** Screenshots and figures of the browser tests. */
export const ARTIFACTS = path.resolve('test-artifacts');
const axeSource = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** axe-core's serious and critical violations of the page as it is now (injected past the CSP by the test only); a screenshot beside. */
export async function axeViolations(page: Page, name: string) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(async () => (window as unknown as { axe: { run(): Promise<{ violations: Array<{ id: string; impact: string; help: string; nodes: unknown[] }> }> } }).axe.run());
  const serious = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.help} (${v.nodes.length})`);
  await page.screenshot({ path: path.join(ARTIFACTS, `console-${name}.png`), fullPage: true });
  return serious;
}

/** A console page signed in with a session made over the API, handed to the cookie as the console's log-in does. */
export async function signedInPage(browser: Browser, origin: string, refreshToken: string) {
  const context = await browser.newContext({ bypassCSP: true });
  const page = await context.newPage();
  await page.goto(`${origin}/console`);
  await page.evaluate(async (t) => {
    await fetch('/auth/session', { method: 'POST', headers: { 'content-type': 'application/json', 'x-tenantplane-csrf': '1' }, body: JSON.stringify({ refreshToken: t }) });
  }, refreshToken);
  await page.reload();
  await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: 15_000 });
  return { context, page };
}
