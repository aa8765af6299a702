// The whole directive table, merged from one file per area.

import { linkDirectives } from './directives-link';
import { miscDirectives } from './directives-misc';
import { serverDirectives } from './directives-server';
import { tlsDirectives } from './directives-tls';
import { DirectiveSpec, DirectiveTable } from './registry';

function merge(...tables: DirectiveTable[]): DirectiveTable {
  const out: Record<string, DirectiveSpec> = Object.create(null) as Record<string, DirectiveSpec>;
  for (const t of tables) {
    for (const [name, spec] of Object.entries(t)) {
      if (name in out) throw new Error(`directive '${name}' is declared twice`);
      out[name] = spec;
    }
  }
  return out;
}

export const directiveTable: DirectiveTable = merge(linkDirectives, serverDirectives, tlsDirectives, miscDirectives);
