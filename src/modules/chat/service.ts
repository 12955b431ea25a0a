import { z } from 'zod';
import type { Context } from '../../graphql/context.ts';
import { notFound, translateDatabaseError } from '../../graphql/errors.ts';
import { displayName, parseInput } from '../../graphql/validate.ts';
import { requireUser } from '../tenants/access.ts';
import { requirePermission } from '../access/permissions.ts';

/**
 * Chat sessions are private to their user: the policies of sql/0006 (`user_id = app.current_user_id()` and a
 * visible tenant) decide what is found, so another member's session is simply not there. The role checks here give
 * viewers a clear FORBIDDEN; the insert policies demand MEMBER as well.
 */
export const CHAT_ROLES = ['USER', 'ASSISTANT'] as const;
export const MAX_TITLE = 200;
export const MAX_CONTENT = 32000;

const CreateChatSessionInput = z.object({ title: displayName('title', MAX_TITLE) });
const PostMessageInput = z.object({
  role: z.enum(CHAT_ROLES, { message: 'the role is USER or ASSISTANT' }),
  content: z
    .string()
    .min(1, 'the content cannot be empty')
    .max(MAX_CONTENT, `the content has at most ${MAX_CONTENT} characters`)
    .refine((s) => s.trim().length > 0, 'the content cannot be blank')
    .refine((s) => !s.includes('\u0000'), 'the content cannot contain NUL characters'),
});

export interface ChatSessionKey {
  tenantId: string;
  id: string;
}

export async function createChatSession(ctx: Context, tenantId: string, raw: { title: string }): Promise<ChatSessionKey> {
  const userId = requireUser(ctx);
  await requirePermission(ctx, tenantId, 'chats:write');
  const input = parseInput(CreateChatSessionInput, raw);
  const session = await ctx.db.chatSession
    .create({ data: { tenantId, userId, title: input.title }, select: { tenantId: true, id: true } })
    .catch((e) => translateDatabaseError(e));
  return session;
}

/** Appends a message to one of your own sessions; the session's updated_at follows (trigger in sql/0006). */
export async function postMessage(ctx: Context, session: ChatSessionKey, raw: { role: string; content: string }): Promise<ChatSessionKey> {
  requireUser(ctx);
  await requirePermission(ctx, session.tenantId, 'chats:write');
  const input = parseInput(PostMessageInput, raw);
  // Another member's session, or one of another tenant, is invisible here: the same answer as a missing one.
  const found = await ctx.db.chatSession.findUnique({ where: { tenantId_id: session }, select: { id: true } });
  if (!found) throw notFound('chat session');
  const message = await ctx.db.chatMessage
    .create({
      data: { tenantId: session.tenantId, sessionId: session.id, role: input.role, content: input.content },
      select: { tenantId: true, id: true },
    })
    .catch((e) => translateDatabaseError(e));
  return message;
}
