// persist-key: the TLS material and control-channel keys of a configuration are read once and
// kept over SIGUSR1 restarts, so a process that dropped root (`user nobody`) restarts without
// reading root-only key files again (OpenVPN's --persist-key). A SIGHUP brings a new
// configuration object, whose files are read again; without persist-key every run reads them.
import type { ConnectionFields, Options } from '../shared/config';
import { loadTlsMaterial } from '../shared/config/tls-material';
import { loadWrap } from '../shared/config/wrap';
import type { WrapConfig } from '../shared/session/control-wrap';
import type { TlsMaterial } from '../shared/session/types';

export class KeyKeeper {
  private options: Options | null = null;
  private tls: TlsMaterial | null = null;
  /** By connection entry (a `<connection>` block may name its own tls-crypt key). */
  private readonly wraps = new Map<ConnectionFields, WrapConfig>();

  tlsMaterial(options: Options): TlsMaterial {
    if (!this.keeps(options)) return loadTlsMaterial(options);
    this.tls ??= loadTlsMaterial(options);
    return this.tls;
  }

  wrap(options: Options, fields: ConnectionFields, role: 'client' | 'server'): WrapConfig {
    if (!this.keeps(options)) return loadWrap(options, fields, role);
    let wrap = this.wraps.get(fields);
    if (wrap === undefined) {
      wrap = loadWrap(options, fields, role);
      this.wraps.set(fields, wrap);
    }
    return wrap;
  }

  /**
   * A hitless reload made `next` the running configuration with `tls`: a later SIGUSR1 restart
   * (persist-key) keeps these, and the server's control-channel wrap, which a reload never changes.
   */
  adoptReload(next: Options, tls: TlsMaterial): void {
    const wrap = this.options === null ? undefined : this.wraps.get(this.options);
    this.options = next;
    this.tls = tls;
    this.wraps.clear();
    if (wrap !== undefined) this.wraps.set(next, wrap);
  }

  /** Whether `options` may use what is kept; a new configuration forgets the old keys. */
  private keeps(options: Options): boolean {
    if (options !== this.options) {
      this.options = options;
      this.tls = null;
      this.wraps.clear();
    }
    return options.persistKey;
  }
}
