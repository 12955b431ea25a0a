import { builder } from '../../graphql/builder.ts';
import { tenantScopedIdFromGlobalId, uuidFromGlobalId } from '../../graphql/ids.ts';
import * as chat from './service.ts';

const ChatRoleEnum = builder.enumType('ChatRole', {
  description: 'Who wrote a chat message.',
  values: chat.CHAT_ROLES,
});

builder.prismaNode('ChatSession', {
  id: { field: 'tenantId_id' },
  nullable: true,
  description: 'A conversation. Only the user who started it can see it or its messages, even inside the same tenant.',
  fields: (t) => ({
    title: t.exposeString('title'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'The time of the newest message (or of creation).' }),
    owner: t.relation('user'),
    tenant: t.relation('tenant'),
    messages: t.relatedConnection('messages', {
      totalCount: true,
      description: 'Oldest first.',
      cursor: 'tenantId_id',
      query: () => ({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] }),
    }),
  }),
});

builder.prismaNode('ChatMessage', {
  id: { field: 'tenantId_id' },
  nullable: true,
  fields: (t) => ({
    role: t.expose('role', { type: ChatRoleEnum }),
    content: t.exposeString('content'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    session: t.relation('session'),
  }),
});

builder.prismaObjectFields('Tenant', (t) => ({
  chatSessions: t.relatedConnection('chatSessions', {
    totalCount: true,
    description: 'Your own chat sessions in this tenant, most recently active first. Nobody else’s are ever listed.',
    cursor: 'tenantId_id',
    query: () => ({ orderBy: [{ updatedAt: 'desc' }, { id: 'desc' }] }),
  }),
}));

const CreateChatSessionInput = builder.inputType('CreateChatSessionInput', {
  fields: (t) => ({
    tenantId: t.id({ required: true }),
    title: t.string({ required: true, description: '1–200 characters (trimmed).' }),
  }),
});
const PostMessageInput = builder.inputType('PostMessageInput', {
  fields: (t) => ({
    sessionId: t.id({ required: true }),
    role: t.field({ type: ChatRoleEnum, required: true }),
    content: t.string({ required: true, description: '1–32000 characters.' }),
  }),
});

builder.mutationFields((t) => ({
  createChatSession: t.prismaField({
    extensions: { permission: 'chats:write' },
    type: 'ChatSession',
    description: 'Starts a chat session of your own in a tenant (members and above).',
    args: { input: t.arg({ type: CreateChatSessionInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const tenantId = uuidFromGlobalId('Tenant', String(input.tenantId), 'tenantId');
      const key = await chat.createChatSession(ctx, tenantId, { title: input.title });
      return ctx.db.chatSession.findUniqueOrThrow({ ...query, where: { tenantId_id: key } });
    },
  }),
  postMessage: t.prismaField({
    extensions: { permission: 'chats:write' },
    type: 'ChatMessage',
    description: 'Adds a message to one of your chat sessions (members and above).',
    args: { input: t.arg({ type: PostMessageInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const session = tenantScopedIdFromGlobalId('ChatSession', String(input.sessionId), 'sessionId');
      const key = await chat.postMessage(ctx, session, { role: input.role, content: input.content });
      return ctx.db.chatMessage.findUniqueOrThrow({ ...query, where: { tenantId_id: key } });
    },
  }),
}));
