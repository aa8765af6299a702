// docs/grafana/shardvpn-dashboard.json against a live server: a real Prometheus scrapes a shardvpn
// server that serves a stock openvpn client with traffic, and every panel's query, with Grafana's
// variables filled in as Grafana would, must be one Prometheus accepts and answers with data. A
// query naming a metric the server does not export fails the test, and so does a panel that
// does not use the dashboard's datasource input.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { runNodeIn } from '../lab/netns';
import { SERVER_UNDERLAY, VpnLab } from '../lab/vpn-lab';
import { LabPrometheus } from './helpers/lab-prometheus';

const DOCS = path.join(__dirname, '..', '..', 'docs');
const DASHBOARD_FILE = path.join(DOCS, 'grafana', 'shardvpn-dashboard.json');
const METRICS_PORT = 9188;
const MANAGEMENT_PORT = 7505;

interface Datasource {
  type?: string;
  uid?: string;
}
interface Target {
  refId?: string;
  expr?: string;
  datasource?: Datasource;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: Datasource;
  targets?: Target[];
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  definition?: string;
  allValue?: string;
  datasource?: Datasource;
}
interface Dashboard {
  schemaVersion: number;
  __inputs: { name: string; type: string; pluginId: string }[];
  panels: Panel[];
  templating: { list: Variable[] };
}

const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;
const DATASOURCE = '${DS_PROMETHEUS}';

/** Every panel, those inside rows included. */
function allPanels(panels: readonly Panel[]): Panel[] {
  return panels.flatMap((panel) => [panel, ...allPanels(panel.panels ?? [])]);
}

/** The queries of the dashboard, each with the panel it belongs to. */
const queries = allPanels(dashboard.panels).flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel, target })));

/**
 * Grafana's interval variables as a 1 s scrape interval gives them over a short time range, and
 * each template variable at its "All" value. A variable left over fails the test below.
 */
function substitute(expr: string): string {
  let out = expr.replaceAll('$__rate_interval', '30s').replaceAll('$__interval', '5s').replaceAll('$__range', '5m');
  for (const variable of dashboard.templating.list) {
    const value = variable.allValue ?? '.*';
    for (const form of [`\${${variable.name}}`, `[[${variable.name}]]`, `$${variable.name}`]) out = out.replaceAll(form, value);
  }
  return out;
}

/** The metric names a query (or a page) names: shardvpn's own and prom-client's default ones. */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b((?:shardvpn|process|nodejs)_[a-z0-9_]+)\b/g)].map((m) => m[1] as string);
}

/** Metric names with each histogram's series (_bucket, _sum, _count) named by the histogram. */
function metricFamilies(names: Iterable<string>, exported: ReadonlySet<string>): Set<string> {
  const families = new Set<string>();
  for (const name of names) {
    if (metricNames(name)[0] !== name) continue;
    const histogram = /^(.+)_(bucket|sum|count)$/.exec(name);
    families.add(histogram !== null && exported.has(`${histogram[1]}_bucket`) ? (histogram[1] as string) : name);
  }
  return families;
}

test('the dashboard: Grafana JSON model, a Prometheus datasource input used by every query, the panels operators need', () => {
  assert.ok(dashboard.schemaVersion >= 36, `schemaVersion ${dashboard.schemaVersion}`);
  assert.deepEqual(
    dashboard.__inputs.map((input) => [input.name, input.type, input.pluginId]),
    [['DS_PROMETHEUS', 'datasource', 'prometheus']],
  );
  const panels = allPanels(dashboard.panels);
  assert.equal(new Set(panels.map((p) => p.id)).size, panels.length, 'panel ids are unique');
  assert.equal(new Set(panels.map((p) => p.title)).size, panels.length, 'panel titles are unique');
  for (const { panel, target } of queries) {
    assert.equal(panel.datasource?.uid, DATASOURCE, `${panel.title}: panel datasource`);
    assert.equal(target.datasource?.uid, DATASOURCE, `${panel.title} ${target.refId}: target datasource`);
    assert.ok(target.expr !== undefined && metricNames(target.expr).length > 0, `${panel.title} ${target.refId}: ${target.expr}`);
    assert.doesNotMatch(substitute(target.expr), /\$|\[\[/, `${panel.title}: a variable the test does not know`);
  }
  for (const variable of dashboard.templating.list) assert.equal(variable.datasource?.uid, DATASOURCE, `variable ${variable.name}`);
  // What an operator looks for first: each of these metrics is read by some panel.
  const read = new Set(queries.flatMap(({ target }) => metricNames(target.expr ?? '')));
  for (const metric of [
    'shardvpn_connected_clients',
    'shardvpn_handshakes_completed_total',
    'shardvpn_link_bytes_total',
    'shardvpn_tun_bytes_total',
    'shardvpn_link_packets_total',
    'shardvpn_tun_packets_total',
    'shardvpn_dropped_packets_total',
    'shardvpn_tcp_connections',
    'shardvpn_shard_restarts_total',
    'shardvpn_shard_event_loop_utilization',
    'process_resident_memory_bytes',
  ]) {
    assert.ok(read.has(metric), `no panel reads ${metric}`);
  }
});

test('every dashboard query runs against a real Prometheus scraping a live server with a client', { timeout: 120_000 }, async (t) => {
  const lab = VpnLab.create(1, 'grafana');
  t.after(() => lab.cleanup());
  const server = await lab.startShardvpn(
    `port 1194\nproto udp\ndev tun\ntopology subnet\nserver 10.156.0.0 255.255.255.0\nkeepalive 10 60\nworkers 2\n${lab.serverTlsLines()}` +
      `metrics-listen 127.0.0.1 ${METRICS_PORT}\nmetrics-per-client\nmanagement 127.0.0.1 ${MANAGEMENT_PORT}\nverb 3\n`,
  );
  const prometheus = LabPrometheus.start(lab, lab.server, [`127.0.0.1:${METRICS_PORT}`]);
  t.after(() => prometheus.stop());
  const clientConfig = `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} 1194\nnobind\nverb 3\n`;
  await lab.startOpenvpnClient(0, clientConfig + lab.clientTlsLines());
  await prometheus.ready();
  assert.equal(await prometheus.until('shardvpn_connected_clients', (v) => v === 1), 1);
  assert.ok(lab.ping(lab.clients[0]!, '10.156.0.1', 10) > 0, 'traffic through the tunnel');
  // Enough scrapes after the traffic that a rate over the window sees it.
  await prometheus.until('sum(increase(shardvpn_tun_packets_total{direction="out"}[30s]))', (v) => v > 0);

  // The template variable's query (label_values(METRIC, LABEL)) finds this server.
  for (const variable of dashboard.templating.list) {
    const match = /^label_values\((\w+),\s*(\w+)\)$/.exec(variable.definition ?? '');
    assert.ok(match !== null, `variable ${variable.name}: ${variable.definition}`);
    const body = (await prometheus.get(`/api/v1/label/${match[2]}/values?match[]=${match[1]}`)) as { data: string[] };
    assert.deepEqual(body.data, [`127.0.0.1:${METRICS_PORT}`], `variable ${variable.name}`);
  }

  const exported = await prometheus.metricNames();
  // docs/metrics.md names exactly the series the server exports (metrics-per-client ones included).
  const listed = metricFamilies(metricNames(readFileSync(path.join(DOCS, 'metrics.md'), 'utf8')), exported);
  const families = metricFamilies(exported, exported);
  assert.deepEqual(
    [...families].filter((name) => !listed.has(name)),
    [],
    'exported, but not in docs/metrics.md',
  );
  // prom-client exports these two only once there is a pending request or a garbage collection.
  const conditional = new Set(['nodejs_active_requests', 'nodejs_gc_duration_seconds']);
  const absent = [...listed].filter((name) => !families.has(name) && !conditional.has(name));
  assert.deepEqual(absent, [], 'in docs/metrics.md, but not exported');
  const answers = new Map<string, number[]>();
  for (const { panel, target } of queries) {
    const where = `${panel.title} ${target.refId}`;
    for (const metric of metricNames(target.expr!)) assert.ok(exported.has(metric), `${where}: the server exports no ${metric}`);
    const promql = substitute(target.expr!);
    const answer = await prometheus.instant(promql);
    assert.equal(answer.status, 'success', `${where}: ${promql}: ${answer.error}`);
    const result = answer.data?.result ?? [];
    assert.ok(result.length > 0, `${where}: ${promql} returned no series`);
    answers.set(
      where,
      result.map((sample) => Number(sample.value[1])),
    );
  }
  t.diagnostic(`${answers.size} queries of ${allPanels(dashboard.panels).length} panels answered`);
  // The numbers are the server's: one client connected, and the ping moved tunnel bytes.
  assert.deepEqual(answers.get('Clients connected A'), [1]);
  assert.ok(
    answers.get('Tunnel bytes/s A')!.every((v) => v > 0),
    `tunnel bytes/s ${answers.get('Tunnel bytes/s A')}`,
  );

  // A shard restart (management shard-restart) shows on the restarts panel.
  const restarts = queries.find(({ panel }) => panel.title === 'Shard restarts')!.target.expr!;
  assert.equal(await prometheus.query(substitute(restarts)), 0);
  const script =
    // Notifications (>CLIENT:...) may follow the reply: answer the first match only.
    "const s = require('net').connect(Number(process.argv[1]), '127.0.0.1'); let out = ''; let done = false;" +
    "s.on('data', (d) => { out += d; if (!done && /SUCCESS|ERROR: no/.test(out)) { done = true; process.stdout.write(out); s.end('quit\\r\\n'); } });" +
    "s.on('close', () => process.exit(/SUCCESS/.test(out) ? 0 : 1)); s.write('shard-restart 1\\r\\n');";
  const restart = await runNodeIn(lab.server, '-e', [script, String(MANAGEMENT_PORT)], 10_000);
  assert.equal(restart.code, 0, `${restart.stdout}${restart.stderr}`);
  assert.equal(await prometheus.until(substitute(restarts), (v) => v === 1), 1);
  assert.equal(await server.stop(), 0, server.log().slice(-2000));
});
