// `weft analyze PATH...`: offline validation of Istio YAML, one line per problem, non-zero exit
// when any error is found — the same validator and analyzer the control plane runs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { analyzeResources } from '../config/analyze';
import { listConfigFiles, readConfigFile } from '../config/file-source';
import { formatProblem, type ConfigProblem } from '../config/problems';
import type { ConfigResource } from '../config/resources';
import { validateResource } from '../config/validate';
import { CliError } from './cli-errors';

export const ANALYZE_USAGE = `Usage: weft analyze PATH...

Validates Istio YAML (files or directories) without a running control plane. Prints one line per
problem (kind/name, file, field path, message) and exits 1 when any error is found.
`;

export interface AnalysisReport {
  files: number;
  resources: ConfigResource[];
  problems: ConfigProblem[];
}

export function analyzePaths(paths: readonly string[]): AnalysisReport {
  const files: string[] = [];
  for (const p of paths) {
    if (!fs.existsSync(p)) throw new CliError(`${p}: no such file or directory`);
    if (fs.statSync(p).isDirectory()) files.push(...listConfigFiles(p));
    else files.push(p);
  }
  const resources: ConfigResource[] = [];
  const problems: ConfigProblem[] = [];
  for (const file of files) {
    const update = readConfigFile(file, path.relative(process.cwd(), file) || file);
    problems.push(...update.problems);
    for (const doc of update.documents ?? []) {
      const result = validateResource(doc);
      problems.push(...result.warnings);
      if (result.valid) resources.push(result.resource);
      else problems.push(...result.errors);
    }
  }
  problems.push(...analyzeResources(resources));
  return { files: files.length, resources, problems };
}

export function runAnalyze(paths: readonly string[], out: (line: string) => void): number {
  if (paths.length === 0) throw new CliError('usage: weft analyze PATH... (files or directories of Istio YAML)');
  const report = analyzePaths(paths);
  const errors = report.problems.filter((p) => p.severity === 'error');
  for (const p of report.problems) out(formatProblem(p));
  if (report.problems.length === 0) {
    out(`✔ No validation issues found when analyzing ${report.resources.length} resources in ${report.files} files.`);
  } else {
    out(`${errors.length} error(s), ${report.problems.length - errors.length} warning(s) in ${report.files} files.`);
  }
  return errors.length > 0 ? 1 : 0;
}
