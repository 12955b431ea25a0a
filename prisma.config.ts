import { defineConfig } from 'prisma/config';

// Only `prisma generate` is used: migrations are SQL files in sql/ applied by node-pg-migrate (see README).
export default defineConfig({
  schema: 'prisma/schema.prisma',
});
