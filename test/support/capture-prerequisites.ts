// Transparent capture's tests need Linux and root (network namespaces, iptables); the suite runs
// as root in CI. Elsewhere they fail at once with this reason rather than being skipped (a skipped
// test hides a failure). What else they need (iptables, the SO_ORIGINAL_DST addon),
// scripts/ensure-test-tools.sh provides as root.
export function requireCapturePrerequisites(): void {
  if (process.platform !== 'linux') throw new Error('transparent capture tests need Linux (network namespaces, iptables)');
  if (process.getuid?.() !== 0) throw new Error('transparent capture tests need root (network namespaces, iptables); run the suite as root, as CI does');
}
