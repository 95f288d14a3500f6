// Column output the way kubectl prints it: upper-case headers, left-aligned, three spaces apart.

// Cells may carry ANSI colour codes (proxy-status on a terminal); they take no room on screen.
const ANSI_CODES = /\x1b\[[0-9;]*m/g;
const visibleWidth = (text: string) => text.replace(ANSI_CODES, '').length;

export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(visibleWidth(h), ...rows.map((r) => visibleWidth(r[i] ?? ''))));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(Math.max(0, widths[i] - visibleWidth(c)))))
      .join('   ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}
