import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generate } from '@graphql-codegen/cli';
import type { Types } from '@graphql-codegen/plugin-helpers';
import { printedSchema, SCHEMA_FILE } from '../src/graphql/print.ts';
import codegenConfig from '../codegen.ts';

const ROOT = path.resolve(path.dirname(SCHEMA_FILE), '..');

describe('checked-in artifacts', () => {
  it('schema/schema.graphql matches the code-first schema (run `npm run schema:print`)', () => {
    expect(fs.readFileSync(SCHEMA_FILE, 'utf8'), 'schema/schema.graphql is stale: run `npm run schema:print` (then `npm run sdk`)').toBe(printedSchema());
  });

  it('src/sdk/generated matches schema + operations (run `npm run sdk`)', async () => {
    // Same config as `npm run sdk`, with paths made absolute and nothing written.
    const abs = (p: string) => path.join(ROOT, p);
    const config: Types.Config = {
      ...codegenConfig,
      cwd: ROOT,
      silent: true,
      schema: abs(codegenConfig.schema as string),
      documents: (codegenConfig.documents as string[]).map(abs),
      generates: Object.fromEntries(Object.entries(codegenConfig.generates).map(([file, output]) => [abs(file), output])),
    };
    const outputs = (await generate(config, false)) as Types.FileOutput[];
    expect(outputs.length).toBe(Object.keys(codegenConfig.generates).length);
    for (const { filename, content } of outputs) {
      const file = path.isAbsolute(filename) ? filename : path.join(ROOT, filename);
      expect(fs.existsSync(file), `${path.relative(ROOT, file)} is missing`).toBe(true);
      expect(fs.readFileSync(file, 'utf8'), `${path.relative(ROOT, file)} is stale`).toBe(content);
    }
  });
});
