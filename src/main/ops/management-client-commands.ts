// The management commands that act on one client (manage.c man_kill, man_client_auth,
// man_client_deny, man_client_pending_auth, man_client_kill): the verdicts of a
// management-client-auth server and the kills, worded as OpenVPN 2.6 words its replies.
import { isIPv4 } from 'node:net';
import { atoi, type CommandSession, type ManagementCommand } from './management-command-types';
import type { ServerView } from './server-view';

/** parse_cid / parse_uint of manage.c: decimal numbers, or an ERROR naming which. */
function clientAndKeyId(cidText: string, kidText: string, s: CommandSession): { cid: number; keyId: number } | null {
  const cid = scanUnsigned(cidText);
  if (cid === null) {
    s.send('ERROR: cannot parse CID');
    return null;
  }
  const keyId = scanUnsigned(kidText);
  if (keyId === null) {
    s.send('ERROR: cannot parse KID');
    return null;
  }
  return { cid, keyId };
}

/** sscanf("%u"): leading blanks, an optional +, the digits that follow; null without any. */
function scanUnsigned(text: string): number | null {
  const m = /^\s*\+?(\d+)/.exec(text);
  return m === null ? null : Number(m[1]);
}

/** report_command_status. */
function reportVerdict(ok: boolean, command: string, s: CommandSession): void {
  s.send(ok ? `SUCCESS: ${command} command succeeded` : `ERROR: ${command} command failed`);
}

/** client-auth / client-auth-nt: the client is admitted with this client-connect style config. */
function allowClient(ids: { cid: number; keyId: number }, config: string, view: ServerView, s: CommandSession): void {
  reportVerdict(view.clientAuth(ids.cid, ids.keyId, { allow: true, config }), 'client-auth', s);
}

/** man_kill: `kill cn` or `kill a.b.c.d:port`. */
function kill(victim: string, view: ServerView, s: CommandSession): void {
  // buf_parse on ':' twice: the text before the first colon, and between the first and second.
  const parts = victim.split(':');
  const p1 = parts[0] ?? '';
  const p2 = parts[1] ?? '';
  if (p1 !== '' && p2 !== '') {
    if (!isIPv4(p1)) {
      s.send(`ERROR: error parsing IP address: ${p1}`);
      return;
    }
    const port = atoi(p2);
    if (port <= 0 || port >= 65536) {
      s.send(`ERROR: port number is out of range: ${p2}`);
      return;
    }
    const n = view.killByAddress(p1, port);
    s.send(n > 0 ? `SUCCESS: ${n} client(s) at address ${p1}:${port} killed` : `ERROR: client at address ${p1}:${port} not found`);
  } else if (p1 !== '') {
    const n = view.killByCommonName(p1);
    s.send(n > 0 ? `SUCCESS: common name '${p1}' found, ${n} client(s) killed` : `ERROR: common name '${p1}' not found`);
  } else {
    s.send('ERROR: kill parse');
  }
}

export const CLIENT_COMMANDS = {
  kill: {
    min: 1,
    max: 1,
    help: [
      'kill cn                : Kill the client instance(s) having common name cn.',
      'kill IP:port           : Kill the client instance connecting from IP:port.',
    ],
    run: (p, host, s) => kill(p[1] as string, host.view, s),
  },
  'client-auth': {
    min: 2,
    max: 2,
    help: ['client-auth CID KID    : Authenticate client-id/key-id CID/KID (MULTILINE)'],
    run(p, host, s) {
      const ids = clientAndKeyId(p[1] as string, p[2] as string, s);
      if (ids === null) return;
      s.collectBlock((lines, tooLong) => {
        if (tooLong) s.send('ERROR: client-auth command failed: config block too long');
        else allowClient(ids, lines.join('\n'), host.view, s);
      });
    },
  },
  'client-auth-nt': {
    min: 2,
    max: 2,
    help: ['client-auth-nt CID KID : Authenticate client-id/key-id CID/KID'],
    run(p, host, s) {
      const ids = clientAndKeyId(p[1] as string, p[2] as string, s);
      if (ids !== null) allowClient(ids, '', host.view, s);
    },
  },
  'client-pending-auth': {
    min: 4,
    max: 4,
    help: [
      'client-pending-auth CID KID MSG timeout : Instruct OpenVPN to send AUTH_PENDING and INFO_PRE msg',
      '                                      to the client and wait for a final client-auth/client-deny',
    ],
    run(p, host, s) {
      const ids = clientAndKeyId(p[1] as string, p[2] as string, s);
      if (ids === null) return;
      const timeout = scanUnsigned(p[4] as string);
      if (timeout === null) {
        s.send('ERROR: cannot parse TIMEOUT');
        return;
      }
      if (host.view.clientPendingAuth(ids.cid, ids.keyId, p[3] as string, timeout))
        s.send('SUCCESS: client-pending-auth command succeeded');
      else s.send('ERROR: client-pending-auth command failed. Extra parameter might be too long');
    },
  },
  'client-deny': {
    min: 3,
    max: 4,
    help: [
      'client-deny CID KID R [CR] : Deny auth client-id/key-id CID/KID with log reason',
      '                         text R and optional client reason text CR',
    ],
    run(p, host, s) {
      const ids = clientAndKeyId(p[1] as string, p[2] as string, s);
      if (ids === null) return;
      const verdict = { allow: false as const, reason: p[3] as string, ...(p[4] !== undefined ? { clientReason: p[4] } : {}) };
      reportVerdict(host.view.clientAuth(ids.cid, ids.keyId, verdict), 'client-deny', s);
    },
  },
  'client-kill': {
    min: 1,
    max: 2,
    help: ['client-kill CID [M]    : Kill client instance CID with message M (def=RESTART)'],
    run(p, host, s) {
      const cid = scanUnsigned(p[1] as string);
      if (cid === null) {
        s.send('ERROR: cannot parse CID');
        return;
      }
      reportVerdict(host.view.clientKill(cid, p[2]), 'client-kill', s);
    },
  },
} satisfies Record<string, ManagementCommand>;
