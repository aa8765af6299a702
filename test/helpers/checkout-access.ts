// What user nobody can reach of this checkout. A server that drops root to nobody loads code
// later (a replacement shard worker, a restart), so tests of it need the checkout traversable by
// others; a `mktemp -d` checkout is 0700. These helpers look, and open it for a test's run.
import { execFileSync } from 'node:child_process';
import { chmodSync, statSync } from 'node:fs';
import path from 'node:path';

/** The repository root (this file runs from dist/test/helpers/). */
const ROOT = path.resolve(__dirname, '..', '..', '..');

/** The first file a restarted server loads that nobody cannot read (shard worker code, the addon, a dependency); null: none. */
export function unreadableByNobody(): string | null {
  for (const file of [
    path.join(ROOT, 'dist', 'src', 'workers', 'shard-worker.js'),
    path.join(ROOT, 'build', 'Release', 'shardvpn.node'),
    path.join(ROOT, 'node_modules', 'sodium-native', 'package.json'),
  ]) {
    try {
      execFileSync('runuser', ['-u', 'nobody', '--', 'test', '-r', file], { stdio: 'ignore' });
    } catch {
      return file;
    }
  }
  return null;
}

/**
 * Makes every directory from the checkout up to / traversable by others (o+x) where it is not;
 * returns what undoes it, for `t.after`.
 */
export function checkoutReadableByOthers(): () => void {
  const undo: (() => void)[] = [];
  for (let dir = ROOT; ; dir = path.dirname(dir)) {
    const mode = statSync(dir).mode & 0o7777;
    if ((mode & 0o001) === 0) {
      chmodSync(dir, mode | 0o001);
      undo.push(() => chmodSync(dir, mode));
    }
    if (path.dirname(dir) === dir) break;
  }
  return () => undo.forEach((restore) => restore());
}
