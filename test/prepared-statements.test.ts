import { describe, expect, it } from 'vitest';
import { preparedStatementNames } from '../src/db/database.ts';

describe('prepared statement names', () => {
  it('one stable name per SQL text, and no new names past the bound (clients choose the SQL shapes)', () => {
    const name = preparedStatementNames(2);
    const a = name({ sql: 'select 1' });
    expect(a).toMatch(/^tp_/);
    expect(name({ sql: 'select 1' })).toBe(a);
    const b = name({ sql: 'select 2' });
    expect(b).not.toBe(a);
    // Past the bound: unnamed (parsed and planned each time), while known texts keep their names.
    expect(name({ sql: 'select 3' })).toBeUndefined();
    expect(name({ sql: 'select 2' })).toBe(b);
  });
});
