// Splits a server's CPU samples (`perf record -g -p PID` of a server started with
// BENCH_SERVER_NODE_ARGS=--perf-basic-prof, then `perf script`) into the parts of a handshake's
// cost: OpenSSL's TLS work (what OpenVPN pays too), node:tls stream glue, our control channel,
// thread messages, GC, and so on. Unlike `node --cpu-prof`, which samples wall time, perf
// samples only what ran on a CPU, so preemption on a shared machine is not charged to anyone.
//   perf script -i perf.data | node dist/bench/perf-split.js [clients] [part-substring]
// With `clients`, each part is also given in ms of CPU per handshake (from each sample's own
// period field). With a part's name (or a piece of it), its commonest leaf frames and innermost
// JavaScript frames are listed too.
import { readFileSync } from 'node:fs';

interface Sample {
  tid: number;
  periodNs: number;
  frames: string[];
}

function* samples(text: string): Generator<Sample> {
  let cur: Sample | null = null;
  for (const line of text.split('\n')) {
    if (line.length === 0) {
      if (cur !== null) yield cur;
      cur = null;
      continue;
    }
    if (!line.startsWith('\t') && !line.startsWith(' ')) {
      // "node 16954 20896.781739:    1001001 cpu-clock:pppH: "
      const m = /^\S+\s+(\d+)\s+[\d.]+:\s+(\d+)\s/.exec(line);
      cur = m === null ? null : { tid: Number(m[1]), periodNs: Number(m[2]), frames: [] };
      continue;
    }
    // "\t  7f4b... JS:^receive /path/control.js:51:12+0xe2f (/tmp/perf-1.map)" -> the symbol.
    const m = /^\s+[0-9a-f]+\s+(.*?)(?:\+0x[0-9a-f]+)?\s+\([^)]*\)$/.exec(line);
    if (cur !== null && m !== null) cur.frames.push(m[1]!);
  }
  if (cur !== null) yield cur;
}

// A sample belongs first to the work it was done for, wherever in its stack that shows (GC,
// compiling, a message's structured clone, tls-crypt, the certificate copy, ...). Otherwise to
// the frame nearest its leaf that names a part: OpenSSL's TLS work calls back into node:tls and
// into our code (the 'secure' event), so only the leaf side of a stack says who is working.
// Frames that name nobody (V8 builtins, runtime calls, malloc) are skipped on the way up.
const CONTEXT_PARTS: { name: string; match: RegExp }[] = [
  {
    name: 'GC',
    match:
      /v8::internal::(Heap|Scavenger|MarkCompact|ConcurrentMarking|MinorMarkCompact|IncrementalMarking|Sweeper|ArrayBufferSweeper|MemoryAllocator|GlobalBackingStoreRegistry)|Builtins_.*GC/,
  },
  {
    name: 'V8 parse and compile (JIT)',
    match: /v8::internal::(Parser|Scanner|Compiler|compiler::|maglev::|baseline::|interpreter::Bytecode)/,
  },
  {
    name: 'thread messages (postMessage, structured clone)',
    match: /MessagePort::PostMessage|Message::Serialize|Message::Deserialize|ValueSerializer|ValueDeserializer/,
  },
  { name: 'logging', match: /^JS:\S* .*\/src\/shared\/log\.js/ },
  { name: 'ours: tls-crypt wrap/unwrap', match: /^JS:\S* .*\/protocol\/tls-crypt\.js|TlsCryptCodec/ },
  {
    name: 'ours: stateless cookie and first-packet check',
    match: /^JS:\S* .*\/(stateless-responder|session-cookie|first-packet-check)\.js/,
  },
  { name: 'ours: peer certificate (X509Certificate)', match: /X509Certificate|X509ToObject|GetPeerCert/ },
  { name: 'ours: key derivation (exportKeyingMaterial)', match: /ExportKeyingMaterial/ },
  { name: 'OpenSSL: SSL_new/SSL_free per session', match: /^(SSL_new|SSL_free|ossl_ssl_connection_new|ossl_ssl_connection_free)$/ },
];

const LEAF_PARTS: { name: string; match: RegExp }[] = [
  {
    name: 'OpenSSL: TLS handshake (ECDHE, signature, verify, records)',
    // OpenSSL's assembly keeps no frame pointer: its stacks end at the leaf.
    match:
      /^(SSL_|ossl_|state_machine|tls_|ssl3_|ssl_|dtls_|__ecp_nistz256|ecp_nistz256|x25519_|sha512_block|sha256_block|sha1_block|bn_|BN_|EVP_|EC_|ECDSA_|ec_|X509_|x509_|asn1_|ASN1_|RSA_|rsa_|OSSL_|CRYPTO_|evp_|aesni_|gcm_|OPENSSL_|HMAC|PEM_|d2i_|i2d_|BIO_|bio_|ecdsa_|ecx_|kdf_|tls1_|md_|ctr_|cipher_|pkey_|collect_|construct_|decoder_|encoder_)/,
  },
  { name: 'UDP send (syscalls)', match: /__sys_sendmsg|__sys_sendmmsg|^sendmmsg|^sendmsg|^udp_/ },
  { name: 'UDP receive (syscalls)', match: /__sys_recvmmsg|^recvmmsg|^recvmsg/ },
  {
    name: 'node:tls / JSStreamSocket / stream glue',
    match:
      /^JS:\S* node:(_tls_wrap|tls|net|stream|events|internal\/(js_stream_socket|streams|stream_base_commons|tls|process\/task_queues|process\/next_tick|timers|event_target))|^node::(crypto::TLSWrap|JSStream|StreamBase|StreamResource|StreamReq|LibuvStreamWrap|WriteWrap|ShutdownWrap|crypto::NodeBIO|AsyncWrap|BaseObject|MakeCallback|InternalMakeCallback|Environment|EmitAsync)/,
  },
  { name: 'ours: control channel (session, reliable, packet)', match: /^JS:\S* .*\/src\/shared\/(session|protocol)\// },
  { name: 'ours: shard loop, clients, link I/O', match: /^JS:\S* .*\/(src|node_modules)\/|^shardvpn::|^napi_/ },
  { name: 'other node internals (JS)', match: /^JS:/ },
  { name: 'event loop (libuv, epoll)', match: /^uv_|^uv__|epoll/ },
  {
    name: 'kernel: scheduling, futex, other syscalls',
    match: /^(finish_task_switch|__schedule|_raw_spin|futex|do_syscall|entry_SYSCALL|__x64_sys)/,
  },
  {
    name: 'glibc malloc/free (caller not in the stack)',
    match: /^(_int_malloc|_int_free|malloc|cfree|free|malloc_consolidate|unlink_chunk|_int_realloc|realloc|calloc)/,
  },
];

function partOf(frames: readonly string[]): string {
  for (const part of CONTEXT_PARTS) if (frames.some((f) => part.match.test(f))) return part.name;
  for (const f of frames) for (const part of LEAF_PARTS) if (part.match.test(f)) return part.name;
  return 'other native';
}

function main(): void {
  const clients = process.argv[2] === undefined ? 0 : Number(process.argv[2]);
  const show = process.argv[3];
  const shown = new Map<string, number>();
  const text = readFileSync(0, 'utf8');
  const byTid = new Map<number, number>();
  const byPart = new Map<string, number>();
  let total = 0;
  for (const s of samples(text)) {
    total += s.periodNs;
    byTid.set(s.tid, (byTid.get(s.tid) ?? 0) + s.periodNs);
    const part = partOf(s.frames);
    byPart.set(part, (byPart.get(part) ?? 0) + s.periodNs);
    if (show !== undefined && part.includes(show)) {
      const js = s.frames.filter((f) => f.startsWith('JS:')).slice(0, 2);
      const key = `${s.frames[0] ?? '?'}  <  ${js.join(' < ')}`.replace(/\/\S*\/dist\//g, '');
      shown.set(key, (shown.get(key) ?? 0) + s.periodNs);
    }
  }
  const perConn = (ns: number): string => (clients > 0 ? `${(ns / 1e6 / clients).toFixed(2).padStart(6)} ms/conn` : '');
  console.log(`${(total / 1e9).toFixed(2)} s of CPU sampled${perConn(total) !== '' ? `, ${perConn(total).trim()}` : ''}`);
  console.log('by thread:');
  for (const [tid, ns] of [...byTid].sort((a, b) => b[1] - a[1])) {
    console.log(`  ${((100 * ns) / total).toFixed(1).padStart(5)} %  ${perConn(ns)}  tid ${tid}`);
  }
  console.log('by part:');
  for (const [part, ns] of [...byPart].sort((a, b) => b[1] - a[1])) {
    console.log(`  ${((100 * ns) / total).toFixed(1).padStart(5)} %  ${perConn(ns)}  ${part}`);
  }
  if (show === undefined) return;
  console.log(`commonest stacks of "${show}" (leaf < innermost JavaScript frames):`);
  for (const [key, ns] of [...shown].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
    console.log(`  ${((100 * ns) / total).toFixed(1).padStart(5)} %  ${key}`);
  }
}

main();
