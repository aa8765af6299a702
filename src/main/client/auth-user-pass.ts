// --auth-user-pass: username and password from a file (or inline block), or asked on the
// terminal ("Enter Auth Username:" / "Enter Auth Password:", the password without echo).
import { execFileSync } from 'node:child_process';
import { openSync, closeSync, readSync, writeSync } from 'node:fs';

import { ConfigError, type Options } from '../../shared/config';
import { readMaterial } from '../../shared/config/material';

export interface Credentials {
  username: string;
  password: string;
}

/** The file's first line is the username, the second the password (misc.c get_user_pass). */
export function parseAuthFile(text: string, where: { file: string; line: number }, directive = 'auth-user-pass'): Credentials {
  const lines = text.split(/\r?\n/);
  const username = lines[0] ?? '';
  const password = lines[1] ?? '';
  if (username.length === 0) throw new ConfigError(where, directive, 'the file has no username on its first line');
  if (username.length > 127 || password.length > 127)
    throw new ConfigError(where, directive, 'username and password must be at most 127 characters');
  return { username, password };
}

/** Reads one line from the terminal; echo off for secrets (stty on the terminal itself). */
export function promptLine(prompt: string, secret: boolean, noTerminal?: string): string {
  let fd: number;
  try {
    fd = openSync('/dev/tty', 'r+');
  } catch {
    throw new Error(
      noTerminal ??
        `auth-user-pass: no terminal to ask for the ${secret ? 'password' : 'username'} on; put them in a file (auth-user-pass FILE)`,
    );
  }
  const stty = (arg: string): void => {
    try {
      execFileSync('stty', [arg], { stdio: [fd, 'ignore', 'ignore'] });
    } catch {
      // not a real terminal: echo stays as it is
    }
  };
  try {
    // Echo off before the prompt shows, so nothing typed after it is echoed.
    if (secret) stty('-echo');
    writeSync(fd, prompt);
    const bytes: number[] = [];
    const one = Buffer.alloc(1);
    for (;;) {
      const n = readSync(fd, one, 0, 1, null);
      if (n === 0 || one[0] === 0x0a) break;
      if (one[0] !== 0x0d) bytes.push(one[0]!);
    }
    if (secret) {
      stty('echo');
      writeSync(fd, '\n');
    }
    return Buffer.from(bytes).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** The credentials the config asks for, or null when it does not use auth-user-pass. */
export function loadCredentials(options: Options): Credentials | null {
  const ref = options.authUserPass;
  if (ref === undefined) return null;
  let creds: Credentials;
  if (ref.kind === 'stdin') {
    const username = promptLine('Enter Auth Username: ', false);
    const password = promptLine('Enter Auth Password: ', true);
    creds = { username, password };
  } else {
    creds = parseAuthFile(readMaterial(ref, 'auth-user-pass'), { file: ref.file, line: ref.line });
    // A file with only the username: ask for the password (as OpenVPN 2.6 does).
    if (creds.password.length === 0 && ref.kind === 'file')
      creds = { username: creds.username, password: promptLine('Enter Auth Password: ', true) };
  }
  const challenge = options.staticChallenge;
  if (challenge === undefined) return creds;
  // misc.c get_user_pass_cr: the response is asked on the terminal even when the file holds the
  // password, and both go to the server packed as SCRV1:base64(password):base64(response).
  const response = promptLine(
    `CHALLENGE: ${challenge.text} `,
    !challenge.echo,
    'static-challenge: no terminal to ask for the response on (it cannot come from a file); run the client on a terminal',
  );
  return { username: creds.username, password: staticChallengePassword(creds.password, response) };
}

/** OpenVPN's static-challenge password: SCRV1:base64(password):base64(response). */
export function staticChallengePassword(password: string, response: string): string {
  return `SCRV1:${Buffer.from(password, 'utf8').toString('base64')}:${Buffer.from(response, 'utf8').toString('base64')}`;
}
