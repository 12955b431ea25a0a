import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startTestApp, type TestApp } from './support/app.ts';
import { axeViolations, launchChromium, signedInPage } from './support/browser.ts';
import { createTenant, signUp, type TestUser } from './support/client.ts';
import { platformStaff } from './support/fleet.ts';
import { startRegistry, type TestRegistry } from './support/registry.ts';

/**
 * The console's releases (issue 11) in Debian's Chromium, with the real registry: platform staff add and check the
 * cluster's registry on the fleet page; a tenant owner adds the built-in notes as an app source, makes a release
 * group, builds it and deploys the candidate — each job's progress bar live to done — creates a site on it, runs its
 * module job, disables and enables the app. The page passes axe-core and every control is reached with the keyboard.
 */
let app: TestApp;
let browser: Browser;
let registry: TestRegistry;
let tmp: string;
let staff: TestUser, owner: TestUser;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tp-console-releases-'));
  [app, browser, registry] = await Promise.all([
    startTestApp({ RELEASES_DIR: path.join(tmp, 'releases'), BENCH_PULL_POLL_SECONDS: '0.3' }),
    launchChromium(),
    startRegistry(),
  ]);
  [staff, owner] = await Promise.all([platformStaff(app, 'SUPERADMIN', 'console-staff'), signUp(app, 'console-releases')]);
  await createTenant(owner, 'console-rel');
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await app?.stop();
  await registry?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const origin = () => new URL(app.url).origin;

/** The last live progress bar of `within` reaches "done" (the job's own words when it failed). */
async function jobDone(page: Page, within: ReturnType<Page['locator']>) {
  const step = within.locator('.job-step').last();
  await step.waitFor({ timeout: 30_000 });
  await expect.poll(async () => step.textContent(), { timeout: 60_000 }).toMatch(/^(done|failed: .*)$/);
  expect(await step.textContent()).toBe('done');
}

describe('releases in the console', () => {
  it('staff add and check the cluster registry on the fleet page', async () => {
    const { context, page } = await signedInPage(browser, origin(), staff.refreshToken);
    await page.getByRole('button', { name: 'Platform: fleet' }).click();
    const cluster = page.locator('[data-cluster="default"]');
    await cluster.getByText('Add a registry').click();
    const form = page.getByRole('form', { name: 'Registry of default' });
    await form.getByLabel('Registry URL').fill(registry.url);
    await form.getByLabel('Namespace').fill('tenantplane');
    await form.getByLabel('Username').fill(registry.username);
    await form.getByLabel('Password').fill(registry.password);
    await form.getByRole('button', { name: 'Add registry' }).click();
    await cluster.getByRole('button', { name: 'Check registry' }).click();
    await expect
      .poll(
        async () => {
          await page.getByRole('button', { name: 'Refresh' }).click();
          return cluster.locator('[data-registry-check]').getAttribute('data-registry-check');
        },
        { timeout: 20_000 },
      )
      .toBe('PASSED');
    expect(await page.content()).not.toContain(registry.password);
    await context.close();
  });

  it('a tenant builds the built-in notes, deploys it, creates a site on it and runs its module job, all live', async () => {
    const { context, page } = await signedInPage(browser, origin(), owner.refreshToken);
    await page.getByRole('button', { name: 'Releases' }).click();
    const addSource = page.getByRole('form', { name: 'Add an app source' });
    await addSource.getByLabel('Repository').fill('builtin:notes');
    await addSource.getByLabel('Version (tag or commit)').fill('v2.0.0');
    await addSource.getByRole('button', { name: 'Add source' }).click();
    await page.getByText('builtin:notes @ v2.0.0').first().waitFor();

    const addGroup = page.getByRole('form', { name: 'Create a release group' });
    await addGroup.getByLabel('Group name (DNS-safe)').fill('office');
    await addGroup.getByLabel('Title').fill('Office');
    await addGroup.getByRole('checkbox', { name: /builtin:notes/ }).check();
    await addGroup.getByRole('button', { name: 'Create group' }).click();
    const group = page.locator('[data-group="office"]');
    await group.waitFor();

    await group.getByRole('button', { name: 'Build office' }).click();
    await jobDone(page, group);
    const candidate = group.locator('[data-candidate-status="SUCCESS"]');
    await candidate.waitFor({ timeout: 15_000 });
    expect(await candidate.textContent()).toContain('notes 2.0.0');
    await candidate.getByRole('button', { name: 'Deploy' }).click();
    await jobDone(page, candidate);
    await group.locator('[data-bench-status="ACTIVE"]').waitFor({ timeout: 15_000 });

    const newSite = page.getByRole('form', { name: 'Create a site on office' });
    await newSite.getByLabel('Site name (DNS-safe)').fill(`office-${process.pid}`);
    await newSite.getByLabel('Display name').fill('Office site');
    await newSite.getByRole('button', { name: 'Create site on office' }).click();
    await jobDone(page, group);
    const site = page.locator(`[data-released-site="office-${process.pid}"]`);
    await site.waitFor({ timeout: 15_000 });
    const notes = site.locator('[data-module="notes"]');
    await expect.poll(async () => notes.locator('.status').textContent(), { timeout: 15_000 }).toBe('ENABLED');
    expect(await notes.textContent()).toContain('2.0.0');

    await notes.getByRole('button', { name: /Run archive-stale/ }).click();
    await jobDone(page, notes);
    await notes.getByRole('button', { name: 'Disable notes' }).click();
    await jobDone(page, notes);
    await expect.poll(async () => notes.locator('.status').textContent(), { timeout: 15_000 }).toBe('DISABLED');
    await notes.getByRole('button', { name: 'Enable notes' }).click();
    await expect.poll(async () => notes.locator('.status').textContent(), { timeout: 15_000 }).toBe('ENABLED');

    expect(await axeViolations(page, 'releases')).toEqual([]);
    // Every control of the page is reached with the keyboard alone.
    const reached = new Set<string>();
    for (let i = 0; i < 80; i++) {
      await page.keyboard.press('Tab');
      const label = await page.evaluate(() => {
        const el = document.activeElement as HTMLElement | null;
        return el ? `${el.tagName}:${el.getAttribute('name') ?? el.textContent?.trim().slice(0, 40) ?? ''}` : '';
      });
      reached.add(label);
    }
    for (const control of ['BUTTON:Build office', 'BUTTON:Deploy', 'BUTTON:Disable notes', 'INPUT:repositoryUrl']) expect([...reached]).toContain(control);
    await context.close();
  }, 180_000);
});
