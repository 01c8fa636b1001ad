import { readFileSync, existsSync } from 'fs';
import { join } from 'path';

// What @grafana/plugin-validator checks without network (NOTES.md), on the source plugin.json.
const plugin = JSON.parse(readFileSync(join(__dirname, 'plugin.json'), 'utf8'));
const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8'));

describe('plugin.json', () => {
  it('identifies a frontend datasource with annotations and metrics', () => {
    expect(plugin.id).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*-datasource$/);
    expect(plugin.id).toBe(pkg.name);
    expect(plugin).toMatchObject({ type: 'datasource', name: 'EVTwin', metrics: true, annotations: true });
    // Alerting needs a backend; this plugin has none.
    expect(plugin).toMatchObject({ alerting: false, backend: false });
    expect(plugin.info.version).toBe('%VERSION%');
    expect(plugin.info.updated).toBe('%TODAY%');
    expect(plugin.dependencies.grafanaDependency).toMatch(/^>=\d+\.\d+\.\d+$/);
  });

  it('has a description, keywords, an author, links and safe logos that exist', () => {
    expect(plugin.info.description.length).toBeGreaterThan(40);
    expect(plugin.info.keywords.length).toBeGreaterThan(3);
    expect(plugin.info.author.name).toBeTruthy();
    expect(plugin.info.links.length).toBeGreaterThan(0);
    for (const logo of [plugin.info.logos.small, plugin.info.logos.large]) {
      const file = join(__dirname, logo);
      expect(existsSync(file)).toBe(true);
      const svg = readFileSync(file, 'utf8');
      expect(svg).not.toMatch(/<script|\son\w+=|javascript:|xlink:href="http/i);
    }
  });

  it('injects the service token through the route, only below the API base', () => {
    expect(plugin.routes).toEqual([
      {
        path: 'api',
        url: '{{ .JsonData.url }}/evtwin/api/v1',
        headers: [{ name: 'X-Evtwin-Service-Token', content: '{{ .SecureJsonData.serviceToken }}' }],
      },
    ]);
  });
});
