/**
 * Store keys of the token balances (un-prefixed; the store adds its prefix). A tenant id never
 * contains `:`, so `<tenantId>:<userId>` is unambiguous whatever the user id holds.
 */
export function balanceKey(tenantId: string, userId: string): string {
  return `quota:balance:${tenantId}:${userId}`;
}

/** One reservation (and, once settled, its tombstone) per completion. */
export function reservationKey(tenantId: string, completionId: string): string {
  return `quota:reservation:${tenantId}:${completionId}`;
}

/** The user's open reservations with their leases (see balance.scripts.ts). */
export function openReservationsKey(tenantId: string, userId: string): string {
  return `quota:open:${tenantId}:${userId}`;
}
