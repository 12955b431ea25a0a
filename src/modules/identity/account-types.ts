import { encodeGlobalID, resolveCursorConnection } from '@pothos/plugin-relay';
import { builder } from '../../graphql/builder.ts';
import { AuditOutcomeEnum } from '../audit/types.ts';
import * as account from './account.ts';
import { requirePlatformPermission } from '../access/permissions.ts';
import { badInput } from '../../graphql/errors.ts';

/** Who may call a mutation (issue 9): `self` = a signed-in user acting on their own account. */
const SELF = { permission: 'self' } as const;

const Session = builder.objectRef<account.SessionRow>('Session').implement({
  description: 'A sign-in of the user on one device: a refresh-token family, from logIn until logOut, revocation or expiry.',
  fields: (t) => ({
    id: t.id({ resolve: (s) => encodeGlobalID('Session', s.id) }),
    userAgent: t.exposeString('userAgent', { nullable: true, description: 'Of its latest sign-in or refresh.' }),
    ip: t.exposeString('ip', { nullable: true, description: 'Of its latest sign-in or refresh.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the user signed in.' }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', description: 'Its latest sign-in or refresh (access tokens are not tracked per request).' }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', description: 'When its refresh token expires unless refreshed.' }),
    current: t.exposeBoolean('current', { description: 'True for the session of the access token of this request.' }),
  }),
});

const AuthEvent = builder.objectRef<account.AuthEventRow>('AuthEvent').implement({
  description:
    'An authentication event of the user: logIn (SUCCESS or FAILURE), logInThrottled, logOut, refreshTokenReuse, refreshSession (refused), sessionRevoked, changePassword (refused), passwordChanged, deactivated, reactivated, signUp.',
  fields: (t) => ({
    id: t.id({ resolve: (e) => encodeGlobalID('AuthEvent', e.id) }),
    action: t.exposeString('action'),
    outcome: t.expose('outcome', { type: AuditOutcomeEnum }),
    ip: t.exposeString('ip', { nullable: true }),
    userAgent: t.exposeString('userAgent', { nullable: true }),
    sessionId: t.id({ nullable: true, description: 'The Session concerned, when there is one.', resolve: (e) => (e.sessionId ? encodeGlobalID('Session', e.sessionId) : null) }),
    byAnother: t.exposeBoolean('byAnother', { description: 'True when someone else did it (platform staff deactivating or reactivating the account).' }),
    detail: t.exposeString('detail', { nullable: true, description: 'Why an attempt failed, or what it did (e.g. "account deactivated").' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.prismaObjectFields('User', (t) => ({
  username: t.exposeString('username', { nullable: true, description: 'Optional, unique whatever its case.' }),
  firstName: t.exposeString('firstName', { nullable: true, description: 'Optional part of the name; `name` stays the display name.' }),
  lastName: t.exposeString('lastName', { nullable: true, description: 'Optional part of the name; `name` stays the display name.' }),
  isActive: t.exposeBoolean('isActive', { description: 'False once platform staff deactivated the account.' }),
  lastLoginAt: t.field({
    type: 'DateTime',
    nullable: true,
    description: 'The latest successful sign-in. Only for yourself (null on other users).',
    select: { lastLoginAt: true },
    resolve: (u, _args, ctx) => (u.id === ctx.userId ? u.lastLoginAt : null),
  }),
  sessions: t.field({
    type: [Session],
    nullable: true,
    description: 'Your live sessions, the latest used first. Only for yourself (null on other users).',
    resolve: (u, _args, ctx) => (u.id === ctx.userId ? account.listSessions(ctx) : null),
  }),
  authEvents: t.connection({
    type: AuthEvent,
    nullable: true,
    description: 'Your authentication events, newest first. Only for yourself (null on other users).',
    resolve: (u, args, ctx) =>
      u.id !== ctx.userId
        ? null
        : resolveCursorConnection<Promise<account.AuthEventRow[]>>(
            { args, toCursor: (e) => e.id, defaultSize: 20, maxSize: 100 },
            (page) => account.authEventsPage(ctx, page),
          ),
  }),
}));

const ChangePasswordInput = builder.inputType('ChangePasswordInput', {
  fields: (t) => ({
    currentPassword: t.string({ required: true }),
    newPassword: t.string({ required: true, description: 'Same rules as at sign-up: at least 10 characters, not a common password.' }),
  }),
});

const UpdateProfileInput = builder.inputType('UpdateProfileInput', {
  description: 'An absent field is kept; null clears username, firstName or lastName.',
  fields: (t) => ({
    name: t.string({ description: 'The display name (cannot be cleared).' }),
    username: t.string({ description: '3–32 letters, digits and inner `.`, `_`, `-`; unique whatever its case.' }),
    firstName: t.string(),
    lastName: t.string(),
  }),
});

builder.mutationFields((t) => ({
  revokeSession: t.boolean({
    description: 'Ends one of your sessions: its refresh token fails, its access tokens are refused and its sockets close at once. Another user’s session is NOT_FOUND.',
    extensions: SELF,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => account.revokeSession(ctx, String(id)),
  }),
  revokeOtherSessions: t.int({
    description: 'Ends every session of yours but the one of this request; answers how many ended.',
    extensions: SELF,
    resolve: (_root, _args, ctx) => account.revokeOtherSessions(ctx),
  }),
  changePassword: t.boolean({
    description: 'Needs the current password. Ends every other session of yours (their sockets close); this one goes on.',
    extensions: SELF,
    args: { input: t.arg({ type: ChangePasswordInput, required: true }) },
    resolve: (_root, { input }, ctx) => account.changePassword(ctx, input),
  }),
  updateProfile: t.prismaField({
    type: 'User',
    description: 'Your own name, username, first and last name.',
    extensions: SELF,
    args: { input: t.arg({ type: UpdateProfileInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const id = await account.updateProfile(ctx, input);
      return ctx.db.user.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
  deactivateUser: t.prismaField({
    type: 'User',
    description: 'Platform staff (platform.users:write): the user can no longer sign in or refresh; their tokens are refused and sockets closed at once. Not yourself.',
    extensions: { permission: 'platform.users:write' },
    args: { userId: t.arg.id({ required: true }) },
    resolve: async (query, _root, { userId }, ctx) => {
      const id = await account.setUserActive(ctx, String(userId), false);
      return ctx.db.user.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
  reactivateUser: t.prismaField({
    type: 'User',
    description: 'Platform staff (platform.users:write): the user can sign in again (their old sessions stay ended).',
    extensions: { permission: 'platform.users:write' },
    args: { userId: t.arg.id({ required: true }) },
    resolve: async (query, _root, { userId }, ctx) => {
      const id = await account.setUserActive(ctx, String(userId), true);
      return ctx.db.user.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
}));

builder.queryFields((t) => ({
  platformUsers: t.prismaConnection({
    type: 'User',
    cursor: 'email',
    description: 'Every user, by email, for platform staff holding platform.users:read (decided in SQL, app.has_platform_permission); `search` matches email, username or name, `isActive` filters.',
    args: { search: t.arg.string(), isActive: t.arg.boolean() },
    resolve: async (query, _root, args, ctx) => {
      await requirePlatformPermission(ctx, 'platform.users:read');
      const search = args.search?.trim();
      if (search && search.length > 200) throw badInput('search', 'search has at most 200 characters');
      return ctx.db.user.findMany({
        ...query,
        where: {
          ...(args.isActive == null ? {} : { isActive: args.isActive }),
          ...(search
            ? { OR: [{ email: { contains: search, mode: 'insensitive' } }, { username: { contains: search, mode: 'insensitive' } }, { name: { contains: search, mode: 'insensitive' } }] }
            : {}),
        },
        orderBy: { email: 'asc' },
      });
    },
  }),
}));
