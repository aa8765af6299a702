// --http-proxy on shardvpn's client against the stock openvpn 2.6 binary: a TCP client reaches a
// stock server through an HTTP proxy's CONNECT, and sends the proxy the same request the stock
// client sends under the same .ovpn (CONNECT line, custom headers, Host, User-Agent, Basic
// authentication); a refusal (407) restarts the run; a UDP profile with http-proxy is refused as
// OpenVPN refuses it. The proxy is a small CONNECT proxy in the server's namespace that records
// each request's head.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';

import { SERVER_UNDERLAY, type LabProcess, VpnLab } from '../lab/vpn-lab';
import { clientConfig, serverConfig, startOurClient, startStockServer } from './helpers/client-lab';

const INIT = /Initialization Sequence Completed/;
const NET = '10.164.0';
const PROXY_PORT = 3128;

// Records each request head as a JSON line; answers 407 without the expected Basic credentials.
const PROXY_SCRIPT = `
const net = require('node:net');
const fs = require('node:fs');
const [host, port, log, auth] = process.argv.slice(2);
net.createServer((client) => {
  let head = Buffer.alloc(0);
  const onData = (chunk) => {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\\r\\n\\r\\n');
    if (end < 0) return;
    client.off('data', onData);
    client.pause();
    const lines = head.subarray(0, end).toString('latin1').split('\\r\\n');
    fs.appendFileSync(log, JSON.stringify(lines) + '\\n');
    if (!lines.includes('Proxy-Authorization: Basic ' + Buffer.from(auth).toString('base64'))) {
      client.end('HTTP/1.0 407 Proxy Authentication Required\\r\\nProxy-Authenticate: Basic realm="lab"\\r\\n\\r\\n');
      return;
    }
    const target = /^CONNECT ([^ :]+):(\\d+) HTTP\\/1\\.[01]$/.exec(lines[0]);
    if (target === null) {
      client.end('HTTP/1.0 400 Bad Request\\r\\n\\r\\n');
      return;
    }
    const upstream = net.connect(Number(target[2]), target[1], () => {
      client.write('HTTP/1.0 200 Connection established\\r\\n\\r\\n');
      const rest = head.subarray(end + 4);
      if (rest.length > 0) upstream.write(rest);
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  };
  client.on('data', onData);
}).listen(Number(port), host);
`;

let lab: VpnLab;
let proxy: LabProcess;
let proxyLog: string;
let stock: LabProcess;
before(async () => {
  lab = VpnLab.create(1);
  proxyLog = `${lab.dir}/proxy-requests.log`;
  writeFileSync(proxyLog, '');
  const script = lab.file('connect-proxy.js', PROXY_SCRIPT);
  proxy = lab.spawn(lab.server, process.execPath, [script, SERVER_UNDERLAY, String(PROXY_PORT), proxyLog, 'puser:ppass'], 'connect proxy');
  stock = await startStockServer(lab, serverConfig(lab, { net: NET }).replace('proto udp\n', 'proto tcp-server\n'));
});
after(async () => {
  await stock.stop();
  await proxy.stop();
  await lab.cleanup();
});

/** The request heads the proxy has seen, oldest first. */
function requests(): string[][] {
  return readFileSync(proxyLog, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as string[]);
}

/**
 * A TCP profile through the proxy. Its remote is `localhost`: the server's own name for itself,
 * which only the proxy (in the server's namespace) resolves to the server; a client that resolved
 * it would reach its own loopback.
 */
function proxiedClient(password: string): string {
  const creds = lab.file(`proxy-creds-${password}`, `puser\n${password}\n`);
  return clientConfig(lab, {
    remotes: [{ host: 'localhost', port: 1194 }],
    extra:
      `http-proxy ${SERVER_UNDERLAY} ${PROXY_PORT} ${creds} basic\nhttp-proxy-option AGENT lab-agent/1.0\n` +
      'http-proxy-option CUSTOM-HEADER X-Lab yes\n',
  }).replace('proto udp\n', 'proto tcp-client\n');
}

test('through the proxy: shardvpn sends the request the stock client sends, and its tunnel carries traffic', async () => {
  const config = proxiedClient('ppass');
  const theirs = await lab.startOpenvpnClient(0, config);
  await theirs.stop();
  const stockRequest = requests().at(-1);
  assert.deepEqual(stockRequest, [
    'CONNECT localhost:1194 HTTP/1.0',
    'X-Lab: yes',
    'Host: localhost',
    'User-Agent: lab-agent/1.0',
    `Proxy-Authorization: Basic ${Buffer.from('puser:ppass').toString('base64')}`,
  ]);
  const ours = startOurClient(lab, 0, config);
  try {
    await ours.waitFor(INIT, 20_000);
    assert.deepEqual(requests().at(-1), stockRequest);
    assert.equal(lab.ping(lab.clients[0]!, `${NET}.1`), 3);
  } finally {
    await ours.stop();
  }
});

test('a proxy that refuses the credentials (407) restarts the run with the reason logged', async () => {
  const ours = startOurClient(lab, 0, proxiedClient('wrong'));
  try {
    await ours.waitFor(/HTTP proxy returned bad status: 'HTTP\/1\.0 407 Proxy Authentication Required'/, 15_000);
    await ours.waitFor(/SIGUSR1\[soft,http-proxy-error\] received, process restarting/, 5000);
    assert.doesNotMatch(ours.log(), INIT);
  } finally {
    await ours.stop();
  }
});

test('http-proxy with proto udp is refused at start, as OpenVPN refuses it', async () => {
  const config = proxiedClient('ppass').replace('proto tcp-client\n', 'proto udp\n');
  const ours = startOurClient(lab, 0, config);
  const code = await ours.waitExit();
  assert.notEqual(code, 0);
  assert.match(ours.log(), /http-proxy: --http-proxy MUST be used in TCP Client mode \(i\.e\. --proto tcp-client\)/);
});
