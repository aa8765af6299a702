// A real Prometheus (Debian's 2.42) scrapes shardvpn's metrics-listen endpoint while stock openvpn
// clients connect, move 20 MB and leave, and one with a certificate of another CA is refused; the
// test then asks Prometheus's query API what it saw. Prometheus runs inside the server's
// namespace (the endpoint listens on that namespace's 127.0.0.1), and so do the queries.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { runNodeIn } from '../lab/netns';
import { transfer } from '../lab/transfer';
import { SERVER_UNDERLAY, VpnLab, type LabProcess } from '../lab/vpn-lab';

const MB = 1 << 20;
const METRICS_PORT = 9188;
const PROMETHEUS_PORT = 9090;
const PROMETHEUS = `http://127.0.0.1:${PROMETHEUS_PORT}`;

// Fetches one URL inside the namespace and prints the body (node's fetch; no curl needed).
const GET =
  'fetch(process.argv[1]).then(async (r) => { process.stdout.write(await r.text()); process.exit(r.ok ? 0 : 1); }, (e) => { console.error(String(e)); process.exit(1); });';

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(2);
});
after(async () => {
  await lab.cleanup();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function get(url: string): Promise<unknown> {
  const result = await runNodeIn(lab.server, '-e', [GET, url], 10_000);
  if (result.code !== 0) throw new Error(`GET ${url}: exit ${result.code}: ${result.stderr}${result.stdout}`);
  return JSON.parse(result.stdout) as unknown;
}

interface VectorResult {
  status: string;
  data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

/** An instant query that must return one sample (use sum() etc.); null while it returns none. */
async function query(promql: string): Promise<number | null> {
  const body = (await get(`${PROMETHEUS}/api/v1/query?query=${encodeURIComponent(promql)}`)) as VectorResult;
  assert.equal(body.status, 'success', JSON.stringify(body));
  const sample = body.data.result[0];
  return sample === undefined ? null : Number(sample.value[1]);
}

/** Polls a query until `accept` holds; returns the last value, failing with it after `timeoutMs`. */
async function until(promql: string, accept: (value: number) => boolean, timeoutMs = 15_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last: number | null;
  for (;;) {
    last = await query(promql);
    if (last !== null && accept(last)) return last;
    if (Date.now() > deadline) throw new Error(`${promql}: last value ${last} not accepted within ${timeoutMs} ms`);
    await sleep(500);
  }
}

test('Prometheus scrapes clients, bytes, failed handshakes and disconnects from a live server', { timeout: 90_000 }, async (t) => {
  const server = await lab.startShardvpn(
    `port 1194\nproto udp\ndev tun\ntopology subnet\nserver 10.152.0.0 255.255.255.0\nkeepalive 10 60\nworkers 2\n${lab.serverTlsLines()}` +
      `metrics-listen 127.0.0.1 ${METRICS_PORT}\nverb 3\n`,
  );
  const tsdb = mkdtempSync(path.join(os.tmpdir(), 'shardvpn-prometheus-'));
  let prometheus: LabProcess | null = null;
  let serverExit: number | null;
  try {
    const config = lab.file(
      'prometheus.yml',
      `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: shardvpn\n    static_configs:\n      - targets: ['127.0.0.1:${METRICS_PORT}']\n`,
    );
    prometheus = lab.spawn(
      lab.server,
      'prometheus',
      [`--config.file=${config}`, `--storage.tsdb.path=${tsdb}`, `--web.listen-address=127.0.0.1:${PROMETHEUS_PORT}`],
      'prometheus',
    );
    // The client connects while Prometheus starts (its first scrape comes 5-8 s after launch).
    const clientConfig = `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} 1194\nnobind\nexplicit-exit-notify 1\nverb 3\n`;
    const client = await lab.startOpenvpnClient(0, clientConfig + lab.clientTlsLines());
    await prometheus.waitFor(/Server is ready to receive web requests/, 30_000);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const targets = (await get(`${PROMETHEUS}/api/v1/targets`)) as { data: { activeTargets: { health: string; lastError: string }[] } };
      const target = targets.data.activeTargets[0];
      if (target?.health === 'up') break;
      if (Date.now() > deadline) throw new Error(`the scrape target never came up: ${JSON.stringify(targets)}`);
      await sleep(500);
    }
    assert.equal(await until('shardvpn_connected_clients', (v) => v === 1), 1, 'one connected client');
    assert.equal(await until('sum(shardvpn_shard_connected_clients)', (v) => v === 1), 1, 'the shards agree');

    // Client -> server: the data flows into the server, the TCP acks out of it.
    const moved = 20 * MB;
    const result = await transfer(lab, lab.clients[0]!, lab.server, '10.152.0.1', moved);
    assert.equal(result.received.bytes, moved);
    assert.equal(result.received.sha256, result.sent.sha256);
    // Inside the tunnel each TCP segment of at most ~1400 bytes (openvpn clamps the MSS) carries
    // 52 bytes of IPv4+TCP headers with timestamps, and outside it 24 bytes of OpenVPN data
    // framing (opcode/peer-id 4, packet id 4, GCM tag 16): about 5.5% together. Handshakes,
    // pings and the refused client below add a few kilobytes. 20% leaves room for odd segment
    // sizes, and still fails on double counting (>= 100%).
    const tunOut = await until('sum(shardvpn_tun_bytes_total{direction="out"})', (v) => v >= moved);
    const linkIn = await until('sum(shardvpn_link_bytes_total{direction="in"})', (v) => v >= tunOut);
    assert.ok(linkIn >= moved && linkIn <= moved * 1.2, `link bytes in ${linkIn} for ${moved} moved`);
    assert.ok(tunOut >= moved && tunOut <= moved * 1.1, `tun bytes out ${tunOut} for ${moved} moved`);
    // The acks going back are small: far fewer bytes out than in.
    const linkOut = await query('sum(shardvpn_link_bytes_total{direction="out"})');
    assert.ok(linkOut !== null && linkOut > 0 && linkOut < moved * 0.2, `link bytes out ${linkOut}`);
    t.diagnostic(
      `moved ${moved}: tun out ${tunOut} (x${(tunOut / moved).toFixed(4)}), link in ${linkIn} (x${(linkIn / moved).toFixed(4)}), link out ${linkOut}`,
    );

    // A client with a certificate of another CA: the server refuses it.
    const intruderCert = lab.file('intruder.crt', lab.pki.otherClientCert);
    const intruderKey = lab.file('intruder.key', lab.pki.otherClientKey);
    const intruder = await lab.startOpenvpnClient(
      1,
      `${clientConfig}ca ${lab.pki.files.ca}\ncert ${intruderCert}\nkey ${intruderKey}\nremote-cert-tls server\n`,
      null,
    );
    try {
      const failed = await until('sum(shardvpn_handshakes_failed_total{reason="certificate_rejected"})', (v) => v >= 1, 30_000);
      assert.ok(failed >= 1);
    } finally {
      await intruder.stop();
    }
    assert.equal(await query('shardvpn_connected_clients'), 1, 'the refused client never counted as connected');
    assert.ok((await query('sum(shardvpn_handshakes_completed_total)'))! >= 1);
    // The handshake histogram (built by hand from shard counters) is one Prometheus can use.
    assert.ok((await query('sum(shardvpn_handshake_duration_seconds_count)'))! >= 1);
    const median = await query('histogram_quantile(0.5, sum by (le) (shardvpn_handshake_duration_seconds_bucket))');
    assert.ok(median !== null && median > 0 && median <= 10, `median handshake ${median} s`);

    // explicit-exit-notify tells the server at once; the gauge returns to 0.
    await client.stop();
    assert.equal(await until('shardvpn_connected_clients', (v) => v === 0), 0, 'no client after disconnect');
    assert.equal(await until('sum(shardvpn_shard_connected_clients)', (v) => v === 0), 0);
    // Counters are totals: they do not fall when the client leaves.
    assert.ok((await query('sum(shardvpn_link_bytes_total{direction="in"})'))! >= linkIn);
  } finally {
    // Kill Prometheus by its PID and remove its storage, whatever happened.
    if (prometheus !== null) await prometheus.stop('SIGTERM', 5000);
    rmSync(tsdb, { recursive: true, force: true });
    serverExit = await server.stop();
  }
  assert.equal(serverExit, 0, server.log().slice(-2000));
});
