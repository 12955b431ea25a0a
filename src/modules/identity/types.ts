import { builder } from '../../graphql/builder.ts';
import * as identity from './service.ts';
import { logInWithOidc } from './oidc.ts';

export const PlatformRoleEnum = builder.enumType('PlatformRole', {
  description: 'Platform staff role: VIEWER, OPERATOR and SUPERADMIN see every tenant through platformTenants.',
  values: ['NONE', 'VIEWER', 'OPERATOR', 'SUPERADMIN'] as const,
});

export const UserType = builder.prismaNode('User', {
  id: { field: 'id' },
  select: { id: true },
  nullable: true,
  fields: (t) => ({
    email: t.exposeString('email'),
    name: t.exposeString('name'),
    platformRole: t.expose('platformRole', { type: PlatformRoleEnum }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const AuthPayload = builder.objectRef<identity.AuthPayloadShape>('AuthPayload').implement({
  fields: (t) => ({
    accessToken: t.exposeString('accessToken', { description: 'A short-lived JWT: send it as `Authorization: Bearer …`.' }),
    refreshToken: t.exposeString('refreshToken', { description: 'Opaque, single use: trade it for a new pair with refreshSession.' }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', description: 'When the access token expires.' }),
    user: t.prismaField({
      type: 'User',
      resolve: (query, payload, _args, ctx) => ctx.db.user.findUniqueOrThrow({ ...query, where: { id: payload.userId } }),
    }),
  }),
});

builder.queryField('me', (t) =>
  t.prismaField({
    type: 'User',
    nullable: true,
    description: 'The signed-in user, or null without credentials.',
    resolve: (query, _root, _args, ctx) => (ctx.userId ? ctx.db.user.findUnique({ ...query, where: { id: ctx.userId } }) : null),
  }),
);

const SignUpInput = builder.inputType('SignUpInput', {
  fields: (t) => ({
    email: t.string({ required: true }),
    password: t.string({ required: true, description: 'At least 10 characters, not a common password.' }),
    name: t.string({ required: true }),
  }),
});

const LogInInput = builder.inputType('LogInInput', {
  fields: (t) => ({
    email: t.string({ required: true, description: 'The email, or the username (any case) of an account that has one.' }),
    password: t.string({ required: true }),
  }),
});

builder.mutationFields((t) => ({
  signUp: t.field({
    extensions: { permission: 'public' },
    type: AuthPayload,
    args: { input: t.arg({ type: SignUpInput, required: true }) },
    resolve: (_root, { input }, ctx) => identity.signUp(ctx, input),
  }),
  logIn: t.field({
    extensions: { permission: 'public' },
    type: AuthPayload,
    args: { input: t.arg({ type: LogInInput, required: true }) },
    resolve: (_root, { input }, ctx) => identity.logIn(ctx, input),
  }),
  logInWithOidc: t.field({
    extensions: { permission: 'public' },
    type: AuthPayload,
    description:
      'Trades an ID token of the configured OIDC issuer, issued to this server’s client (OIDC_CLIENT_ID), for a session of the user it names (created on first use). The console’s “Log in with …” ends here.',
    args: { idToken: t.arg.string({ required: true }) },
    resolve: (_root, { idToken }, ctx) => logInWithOidc(ctx, idToken),
  }),
  refreshSession: t.field({
    extensions: { permission: 'public' },
    type: AuthPayload,
    description: 'Rotates the refresh token. Reusing a spent one revokes every token of its login.',
    args: { refreshToken: t.arg.string({ required: true }) },
    resolve: (_root, { refreshToken }, ctx) => identity.refreshSession(ctx, refreshToken),
  }),
  logOut: t.boolean({
    extensions: { permission: 'public' },
    description: 'Revokes the refresh token and every token rotated from the same login.',
    args: { refreshToken: t.arg.string({ required: true }) },
    resolve: (_root, { refreshToken }, ctx) => identity.logOut(ctx, refreshToken),
  }),
}));
