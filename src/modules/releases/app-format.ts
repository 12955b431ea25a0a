import path from 'node:path';
import { z } from 'zod';
import semver from 'semver';
import { CronExpressionParser } from 'cron-parser';

/**
 * The app format (issue 11 §1): an app is a folder of a git repository holding `tenantplane-app.json` and the SQL
 * files it names. Migrations run in order inside a site's own schema, as the site's own role; each version lists all
 * of its migrations, the older ones first, so that an update runs only those a site has not run yet. Module jobs are
 * SQL tasks run inside the site on a cron schedule. README "App format" documents it.
 */
export const MANIFEST_FILE = 'tenantplane-app.json';

/** A path inside the app's folder: relative, forward slashes, no `..`, ending in .sql. */
const sqlPath = z
  .string()
  .regex(/^(?!\/)(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9_.\-/]{1,200}\.sql$/, 'a relative path to a .sql file inside the app folder (no .., no leading /)');

const kebab = (what: string) => z.string().regex(/^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/, `${what} is kebab-case: lowercase letters and digits, single dashes`).max(40, `${what} has at most 40 characters`);

export const AppManifestSchema = z
  .object({
    name: kebab('name'),
    version: z.string().refine((v) => semver.valid(v) === v, 'version is a semantic version such as 1.2.0'),
    description: z.string().trim().min(1, 'description cannot be empty').max(500),
    migrations: z.array(sqlPath).min(1, 'an app has at least one migration').max(500),
    /** A query that must succeed after every migration and update (the update's health check); default `select 1`. */
    healthCheck: z.string().trim().min(1).max(10_000).optional(),
    /** Run when the app is removed from a site (removeSiteApp): drops what its migrations made. Without one an app cannot be removed. */
    uninstall: sqlPath.optional(),
    jobs: z
      .array(
        z.object({
          name: kebab('a job name'),
          /** Five-field cron, UTC. */
          schedule: z.string().refine((s) => {
            try {
              CronExpressionParser.parse(s, { tz: 'UTC' });
              return s.trim().split(/\s+/).length === 5;
            } catch {
              return false;
            }
          }, 'schedule is a five-field cron expression such as "*/15 * * * *"'),
          sql: sqlPath,
          /** Higher runs first among due jobs (seed 004's job priority). */
          priority: z.number().int().min(-100).max(100).default(0),
        }),
      )
      .max(50)
      .default([]),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (new Set(m.migrations).size !== m.migrations.length) ctx.addIssue({ code: 'custom', path: ['migrations'], message: 'a migration is listed twice' });
    if (new Set(m.jobs.map((j) => j.name)).size !== m.jobs.length) ctx.addIssue({ code: 'custom', path: ['jobs'], message: 'two jobs have the same name' });
  });

export type AppManifest = z.infer<typeof AppManifestSchema>;

/** An app at one version, read from its source: the manifest and the text of every file it names. */
export interface AppBundle {
  manifest: AppManifest;
  files: Record<string, string>;
}

export class AppFormatError extends Error {}

/** Parses and checks a manifest's text; the error names the field, in words. */
export function parseManifest(text: string): AppManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new AppFormatError(`${MANIFEST_FILE} is not JSON: ${(e as Error).message}`);
  }
  const r = AppManifestSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new AppFormatError(`${MANIFEST_FILE}: ${issue.path.join('.') || 'manifest'}: ${issue.message}`);
  }
  return r.data;
}

/** Every file a manifest names, as paths relative to the app's folder. */
export function filesOf(manifest: AppManifest) {
  return [...manifest.migrations, ...manifest.jobs.map((j) => j.sql), ...(manifest.uninstall ? [manifest.uninstall] : [])];
}

/** `folder` joined with a manifest path, still inside `folder` (the schema already refuses `..`). */
export function inFolder(folder: string, file: string) {
  const base = path.posix.normalize(folder).replace(/\/$/, '');
  const joined = path.posix.normalize(path.posix.join(base, file));
  if (joined.startsWith('../') || joined.startsWith('/') || (base !== '.' && !joined.startsWith(`${base}/`))) throw new AppFormatError(`${file} lies outside the app folder`);
  return joined;
}
