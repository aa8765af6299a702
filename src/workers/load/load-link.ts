// A simulated client's link to the server: a UDP socket, or a TCP connection carrying
// OpenVPN's 2-byte length framing (proto tcp-client in the profile). Both deliver whole packets
// to `receive` and take whole packets in send().
import * as dgram from 'node:dgram';
import { connect } from 'node:net';

import { StreamDeframer, frameForStream } from '../../shared/protocol/stream-framing';

/** The largest packet the server may frame to a simulated client. */
const MAX_STREAM_PACKET = 2048;

export interface LoadLink {
  /** Sends one packet; `sent` runs once it has left (or could not). */
  send(wire: Buffer, sent?: () => void): void;
  close(): void;
  /** Resolves when the socket is closed. */
  readonly closed: Promise<void>;
}

export interface LoadLinkTarget {
  readonly transport: 'udp' | 'tcp';
  readonly family: 4 | 6;
  readonly address: string;
  readonly port: number;
}

export interface LoadLinkEvents {
  receive(packet: Buffer): void;
  /** The socket failed, or (TCP) the connection was refused, reset or badly framed. */
  failed(reason: string, detail: string): void;
}

/** `local`: the address to send from (port chosen by the kernel); undefined: any. */
export function openLoadLink(target: LoadLinkTarget, events: LoadLinkEvents, local?: string): LoadLink {
  return target.transport === 'tcp' ? openTcp(target, events, local) : openUdp(target, events, local);
}

function openUdp(target: LoadLinkTarget, events: LoadLinkEvents, local: string | undefined): LoadLink {
  const socket = dgram.createSocket(target.family === 6 ? 'udp6' : 'udp4');
  // Sends made before the bind completes wait for it (dgram queues them).
  if (local !== undefined) socket.bind({ address: local, port: 0 });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('message', (m) => events.receive(m));
  socket.on('error', (error) => events.failed('socket-error', error.message));
  return {
    closed,
    send: (wire, sent) => socket.send(wire, target.port, target.address, sent),
    close: () => {
      try {
        socket.close();
      } catch {
        // already closed
      }
    },
  };
}

function openTcp(target: LoadLinkTarget, events: LoadLinkEvents, local: string | undefined): LoadLink {
  const socket = connect({
    host: target.address,
    port: target.port,
    family: target.family,
    noDelay: true,
    ...(local !== undefined ? { localAddress: local } : {}),
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const deframer = new StreamDeframer(MAX_STREAM_PACKET);
  let closing = false;
  socket.on('data', (chunk: Buffer) => {
    if (!deframer.push(chunk, (packet) => events.receive(Buffer.from(packet)))) {
      events.failed('tcp-framing', `bad packet length from the server (${deframer.error ?? ''})`);
      socket.destroy();
    }
  });
  socket.on('error', (error: NodeJS.ErrnoException) => events.failed('socket-error', error.code ?? error.message));
  socket.on('close', () => {
    if (!closing) events.failed('connection-reset', 'the server closed the TCP connection');
  });
  return {
    closed,
    // Written in order after the connection opens; net queues what comes before.
    send: (wire, sent) => {
      if (socket.destroyed) {
        sent?.();
        return;
      }
      socket.write(frameForStream(wire), () => sent?.());
    },
    close: () => {
      closing = true;
      socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
    },
  };
}
