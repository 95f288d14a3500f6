// Transparent capture's tests need Linux and root (network namespaces, iptables). Anything else
// they need (iptables, the SO_ORIGINAL_DST addon) scripts/ensure-test-tools.sh provides as root,
// so its absence fails the tests instead of skipping them.
export function captureSkipReason(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux';
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, iptables)';
  return undefined;
}
