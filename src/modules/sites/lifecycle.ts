import type { SiteStatus } from '../../db/generated/prisma/enums.ts';
import { badInput } from '../../graphql/errors.ts';

/**
 * The site state machine (the two Press lifecycles joined): every move the API or a job makes is checked here.
 */
export const TRANSITIONS: Record<SiteStatus, SiteStatus[]> = {
  PENDING: ['PROVISIONING', 'FAILED', 'SOFT_DELETED'],
  PROVISIONING: ['RUNNING', 'FAILED'],
  RUNNING: ['HEALTHY', 'FAILED', 'SUSPENDED', 'SOFT_DELETED', 'RESTORING'],
  HEALTHY: ['RUNNING', 'SUSPENDED', 'SOFT_DELETED', 'RESTORING', 'MOVING', 'UPDATING'],
  FAILED: ['PENDING', 'SOFT_DELETED'],
  SUSPENDED: ['HEALTHY', 'SOFT_DELETED'],
  SOFT_DELETED: ['DELETED', 'RESTORING'],
  DELETED: [],
  RESTORING: ['RUNNING', 'FAILED', 'HEALTHY', 'SOFT_DELETED'],
  MOVING: ['HEALTHY'],
  UPDATING: ['HEALTHY'],
};

export function canTransition(from: SiteStatus, to: SiteStatus) {
  return TRANSITIONS[from].includes(to);
}

/** Refuses an illegal move with BAD_USER_INPUT naming the current state. */
export function assertTransition(from: SiteStatus, to: SiteStatus, action: string) {
  if (!canTransition(from, to)) throw badInput('siteId', `cannot ${action} a site that is ${from}`);
}
