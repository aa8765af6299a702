// A Vega-Lite spec to SVG text in Node.js: compiled to Vega, run headless (renderer 'none': no
// browser, no canvas; text widths are estimated) and serialised with view.toSVG(). vega and
// vega-lite are ES modules only; import() loads them from this CommonJS build (tsconfig's
// module node16 keeps import() as it is instead of turning it into require()).
import type { TopLevelSpec } from 'vega-lite' with { 'resolution-mode': 'import' };

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const [vegaLite, vega] = await Promise.all([import('vega-lite'), import('vega')]);
  const compiled = vegaLite.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.Warn });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
