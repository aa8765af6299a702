// A client's byte counts as OpenVPN reports them (status file, client-disconnect's
// bytes_received / bytes_sent): link bytes over the control channel and over every data key the
// client ever had, retired ones included, and what the main thread last heard of them.
import type { DataChannelKey } from '../../shared/protocol/data-channel';

export interface TrafficTotals {
  bytesReceived: number;
  bytesSent: number;
}

export class ClientTraffic {
  /** Control-channel bytes on the link: OpenVPN's per-client byte counts include the handshake. */
  controlBytesIn = 0;
  controlBytesOut = 0;
  /** Bytes of keys already destroyed. */
  private retiredReceived = 0;
  private retiredSent = 0;
  /** Totals as last reported to the main thread. */
  private reportedReceived = 0;
  private reportedSent = 0;

  /** Keeps `key`'s bytes in the totals once it is destroyed. */
  retire(key: DataChannelKey): void {
    this.retiredReceived += key.traffic.receivedBytes;
    this.retiredSent += key.traffic.sentBytes;
  }

  totals(keys: readonly (DataChannelKey | null)[]): TrafficTotals {
    let bytesReceived = this.controlBytesIn + this.retiredReceived;
    let bytesSent = this.controlBytesOut + this.retiredSent;
    for (const key of keys) {
      if (key === null) continue;
      bytesReceived += key.traffic.receivedBytes;
      bytesSent += key.traffic.sentBytes;
    }
    return { bytesReceived, bytesSent };
  }

  /** The totals, now reported to the main thread. */
  report(keys: readonly (DataChannelKey | null)[]): TrafficTotals {
    const totals = this.totals(keys);
    this.reportedReceived = totals.bytesReceived;
    this.reportedSent = totals.bytesSent;
    return totals;
  }

  /** The totals if they moved since the last report (and are reported now), else null. */
  reportIfMoved(keys: readonly (DataChannelKey | null)[]): TrafficTotals | null {
    const totals = this.totals(keys);
    if (totals.bytesReceived === this.reportedReceived && totals.bytesSent === this.reportedSent) return null;
    this.reportedReceived = totals.bytesReceived;
    this.reportedSent = totals.bytesSent;
    return totals;
  }
}
