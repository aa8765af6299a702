// One value per object, made on first use and kept as long as the object lives: keyed OpenSSL
// contexts per key, a prepared TLS context per configuration. A WeakMap, so a key or a
// configuration that goes (a SIGHUP that reads new ones) takes its entries with it.

/** The value `map` holds for `key`, made by `make` and stored the first time. */
export function cachedFor<K extends object, V>(map: WeakMap<K, V>, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = make();
    map.set(key, value);
  }
  return value;
}
