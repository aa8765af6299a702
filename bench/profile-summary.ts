// Summarises the .cpuprofile files that `node --cpu-prof` writes (one per thread: main and each
// shard; BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" in load-lab.ts) by self time:
// per function, and per part of the handshake's cost (OpenSSL's work, node:tls stream glue,
// our control channel, thread messages, logging, timers, GC). V8 samples whole threads, so
// time a thread spent waiting shows as "(idle)" and is left out of the shares. Two cautions:
// V8 charges a native call made from JavaScript to the calling function (JSStreamSocket's
// `ondata` holds OpenSSL's whole handshake, via readBuffer), and it samples wall time, so a
// thread preempted on a busy machine charges the wait to whatever it was running (postMessage
// looked ten times its perf share). bench/perf-split.ts, on `perf record` samples, has neither.
//   node dist/bench/profile-summary.js DIR [top-N]
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** The part of the cost a frame belongs to, by its function and source file. */
type Part =
  | 'idle'
  | 'gc'
  | 'openssl: TLS handshake and crypto (native tls/crypto calls)'
  | 'node:tls / JSStreamSocket / stream glue'
  | 'our control channel (session, reliable, packet, tls-crypt)'
  | 'thread messages (postMessage, structured clone)'
  | 'logging'
  | 'timers'
  | 'shard loop, UDP I/O and the rest of ours'
  | 'node internals, other'
  | 'program / native, unattributed';

// Native functions node:tls and node:crypto call into OpenSSL through; the self time under them
// is OpenSSL's (and malloc's) work.
const OPENSSL_NATIVE = new Set([
  'receive',
  'start',
  'writeUtf8String',
  'writeBuffer',
  'writev',
  'writeLatin1String',
  'shutdown',
  'setSession',
  'getPeerCertificate',
  'getPeerX509Certificate',
  'getCertificate',
  'exportKeyingMaterial',
  'verifyError',
  'getProtocol',
  'getCipher',
  'update',
  'final',
  'digest',
  'setAuthTag',
  'getAuthTag',
  'setAAD',
  'createHmac',
  'createCipheriv',
  'createDecipheriv',
  'Hmac',
  'CipherBase',
  'Cipher',
  'Decipher',
  'TLSWrap',
  'wrap',
  'initHandle',
  'setVerifyMode',
  'enableSessionCallbacks',
  'requestOCSP',
  'X509Certificate',
  'destroySSL',
  'randomFillSync',
]);

function partOf(frame: CallFrame): Part {
  const { functionName: fn, url } = frame;
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'gc';
  if (fn === '(program)' || fn === '(root)') return 'program / native, unattributed';
  if (url === '' && OPENSSL_NATIVE.has(fn)) return 'openssl: TLS handshake and crypto (native tls/crypto calls)';
  // readBuffer (JSStream -> TLSWrap -> SSL_read: the handshake itself) is charged to its caller.
  if (fn === 'ondata' && url.includes('internal/js_stream_socket')) return 'openssl: TLS handshake and crypto (native tls/crypto calls)';
  // The addon's sendmmsg/recvmmsg, likewise charged to their JavaScript callers.
  if ((fn === 'send' || fn === 'recv') && url.includes('/src/shared/native/devices')) return 'shard loop, UDP I/O and the rest of ours';
  if (/postMessage|structuredClone|serialize|deserialize/i.test(fn) || url.includes('internal/worker')) {
    return 'thread messages (postMessage, structured clone)';
  }
  if (url.includes('/src/shared/log') || url.includes('internal/console') || url.includes('internal/util/inspect')) return 'logging';
  if (url.includes('internal/timers') || url === 'node:timers' || fn === 'setTimeout' || fn === 'clearTimeout') return 'timers';
  if (url.includes('/src/shared/session/') || url.includes('/src/shared/protocol/')) {
    return 'our control channel (session, reliable, packet, tls-crypt)';
  }
  if (url.includes('/dist/')) return 'shard loop, UDP I/O and the rest of ours';
  if (
    url.startsWith('node:_tls') ||
    url.startsWith('node:tls') ||
    url.includes('internal/js_stream_socket') ||
    url.includes('internal/streams') ||
    url.startsWith('node:stream') ||
    url.includes('internal/stream_base_commons') ||
    url.startsWith('node:net') ||
    url.includes('internal/tls') ||
    url.startsWith('node:events') ||
    url.includes('internal/process/task_queues') ||
    url.includes('internal/process/next_tick')
  ) {
    return 'node:tls / JSStreamSocket / stream glue';
  }
  if (url.includes('internal/crypto') || url.startsWith('node:crypto'))
    return 'openssl: TLS handshake and crypto (native tls/crypto calls)';
  return 'node internals, other';
}

interface Totals {
  byFunction: Map<string, number>;
  byPart: Map<Part, number>;
  busyUs: number;
  wallUs: number;
}

function add<K>(m: Map<K, number>, k: K, v: number): void {
  m.set(k, (m.get(k) ?? 0) + v);
}

function summarise(profile: CpuProfile): Totals {
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const t: Totals = { byFunction: new Map(), byPart: new Map(), busyUs: 0, wallUs: profile.endTime - profile.startTime };
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    const dt = profile.timeDeltas[i] ?? 0;
    if (node === undefined) continue;
    const part = partOf(node.callFrame);
    add(t.byPart, part, dt);
    if (part === 'idle') continue;
    t.busyUs += dt;
    const f = node.callFrame;
    const where = f.url === '' ? '(native)' : `${f.url.replace(/^.*\/dist\//, '')}:${f.lineNumber + 1}`;
    add(t.byFunction, `${f.functionName || '(anonymous)'} ${where}`, dt);
  }
  return t;
}

function main(): void {
  const dir = process.argv[2];
  if (dir === undefined) throw new Error('usage: profile-summary DIR [top-N]');
  const top = Number(process.argv[3] ?? 25);
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort();
  if (files.length === 0) throw new Error(`${dir}: no .cpuprofile files`);
  for (const file of files) {
    const t = summarise(JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as CpuProfile);
    console.log(`\n${file}: ${(t.wallUs / 1e6).toFixed(1)} s profiled, ${(t.busyUs / 1e6).toFixed(2)} s not idle`);
    const parts = [...t.byPart.entries()].filter(([p]) => p !== 'idle').sort((a, b) => b[1] - a[1]);
    for (const [part, us] of parts) console.log(`  ${((100 * us) / t.busyUs).toFixed(1).padStart(5)} %  ${part}`);
    console.log('  top functions by self time:');
    const fns = [...t.byFunction.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
    for (const [fn, us] of fns)
      console.log(`  ${((100 * us) / t.busyUs).toFixed(1).padStart(5)} %  ${(us / 1000).toFixed(0).padStart(6)} ms  ${fn}`);
  }
}

main();
