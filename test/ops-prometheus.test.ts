// A real Prometheus (Debian's 2.42) scrapes shardvpn's metrics-listen endpoint while stock openvpn
// clients connect, move 20 MB and leave, and one with a certificate of another CA is refused; the
// test then asks Prometheus's query API what it saw. Prometheus runs inside the server's
// namespace (the endpoint listens on that namespace's 127.0.0.1), and so do the queries.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { transfer } from '../lab/transfer';
import { SERVER_UNDERLAY, VpnLab } from '../lab/vpn-lab';
import { LabPrometheus } from './helpers/lab-prometheus';

const MB = 1 << 20;
const METRICS_PORT = 9188;

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(2);
});
after(async () => {
  await lab.cleanup();
});

test('Prometheus scrapes clients, bytes, failed handshakes and disconnects from a live server', { timeout: 90_000 }, async (t) => {
  const server = await lab.startShardvpn(
    `port 1194\nproto udp\ndev tun\ntopology subnet\nserver 10.152.0.0 255.255.255.0\nkeepalive 10 60\nworkers 2\n${lab.serverTlsLines()}` +
      `metrics-listen 127.0.0.1 ${METRICS_PORT}\nverb 3\n`,
  );
  // Prometheus runs inside the server's namespace (the endpoint listens on its 127.0.0.1).
  const prometheus = LabPrometheus.start(lab, lab.server, [`127.0.0.1:${METRICS_PORT}`]);
  let serverExit: number | null;
  try {
    // The client connects while Prometheus starts.
    const clientConfig = `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} 1194\nnobind\nexplicit-exit-notify 1\nverb 3\n`;
    const client = await lab.startOpenvpnClient(0, clientConfig + lab.clientTlsLines());
    await prometheus.ready();
    assert.equal(await prometheus.until('shardvpn_connected_clients', (v) => v === 1), 1, 'one connected client');
    assert.equal(await prometheus.until('sum(shardvpn_shard_connected_clients)', (v) => v === 1), 1, 'the shards agree');

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
    const tunOut = await prometheus.until('sum(shardvpn_tun_bytes_total{direction="out"})', (v) => v >= moved);
    const linkIn = await prometheus.until('sum(shardvpn_link_bytes_total{direction="in"})', (v) => v >= tunOut);
    assert.ok(linkIn >= moved && linkIn <= moved * 1.2, `link bytes in ${linkIn} for ${moved} moved`);
    assert.ok(tunOut >= moved && tunOut <= moved * 1.1, `tun bytes out ${tunOut} for ${moved} moved`);
    // The acks going back are small: far fewer bytes out than in.
    const linkOut = await prometheus.query('sum(shardvpn_link_bytes_total{direction="out"})');
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
      const failed = await prometheus.until('sum(shardvpn_handshakes_failed_total{reason="certificate_rejected"})', (v) => v >= 1, 30_000);
      assert.ok(failed >= 1);
    } finally {
      await intruder.stop();
    }
    assert.equal(await prometheus.query('shardvpn_connected_clients'), 1, 'the refused client never counted as connected');
    assert.ok((await prometheus.query('sum(shardvpn_handshakes_completed_total)'))! >= 1);
    // The handshake histogram (built by hand from shard counters) is one Prometheus can use.
    assert.ok((await prometheus.query('sum(shardvpn_handshake_duration_seconds_count)'))! >= 1);
    const median = await prometheus.query('histogram_quantile(0.5, sum by (le) (shardvpn_handshake_duration_seconds_bucket))');
    assert.ok(median !== null && median > 0 && median <= 10, `median handshake ${median} s`);
    // Each shard reports its own V8 heap (a worker is an isolate of its own): both shards, the used
    // part within the committed, memory outside the heap (its Buffers), all inside the process's RSS.
    assert.equal(await prometheus.until('count(shardvpn_shard_heap_size_used_bytes > 0)', (v) => v === 2), 2, 'both shards report a heap');
    assert.equal(await prometheus.query('count(shardvpn_shard_heap_size_used_bytes <= shardvpn_shard_heap_size_total_bytes)'), 2);
    assert.equal(await prometheus.query('count(shardvpn_shard_external_memory_bytes > 0)'), 2);
    const shardHeaps = await prometheus.query('sum(shardvpn_shard_heap_size_total_bytes)');
    const rss = await prometheus.query('process_resident_memory_bytes');
    assert.ok(shardHeaps !== null && rss !== null && shardHeaps > 1e6 && shardHeaps < rss, `shard heaps ${shardHeaps} of RSS ${rss}`);

    // explicit-exit-notify tells the server at once; the gauge returns to 0.
    await client.stop();
    assert.equal(await prometheus.until('shardvpn_connected_clients', (v) => v === 0), 0, 'no client after disconnect');
    assert.equal(await prometheus.until('sum(shardvpn_shard_connected_clients)', (v) => v === 0), 0);
    // Counters are totals: they do not fall when the client leaves.
    assert.ok((await prometheus.query('sum(shardvpn_link_bytes_total{direction="in"})'))! >= linkIn);
  } finally {
    // Kill Prometheus by its PID and remove its storage, whatever happened.
    await prometheus.stop();
    serverExit = await server.stop();
  }
  assert.equal(serverExit, 0, server.log().slice(-2000));
});
