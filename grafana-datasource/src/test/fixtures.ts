import { of, throwError, type Observable } from 'rxjs';
import type { DataSourceInstanceSettings } from '@grafana/data';
import type { AssetsResponse } from '../api/contract';
import type { EvtwinOptions } from '../types';

/** GET /assets as the API answers it (core/api.ts AssetsResponse). */
export const ASSETS: AssetsResponse = {
  sites: [
    {
      id: 'plant-a',
      name: 'Plant A',
      lines: [
        { id: 'machining', name: 'Machining' },
        { id: 'assembly', name: 'Assembly' },
      ],
    },
    { id: 'water-north', name: 'Water North', lines: [{ id: 'zone-1', name: 'Zone 1' }] },
  ],
  assets: [
    {
      ref: 'plant-a/cnc-01',
      id: 'cnc-01',
      site: 'plant-a',
      line: 'machining',
      kind: 'cnc',
      name: 'CNC mill 1',
      metrics: { power: 'kW', temperature: '°C' },
      bounds: {},
    },
    {
      ref: 'plant-a/robot-01',
      id: 'robot-01',
      site: 'plant-a',
      line: 'assembly',
      kind: 'robot',
      name: 'Assembly robot 1',
      metrics: { power: 'kW' },
      bounds: {},
    },
    {
      ref: 'water-north/flow-01',
      id: 'flow-01',
      site: 'water-north',
      line: 'zone-1',
      kind: 'flow',
      name: 'Inlet flow meter',
      metrics: { flow: 'L/s' },
      bounds: {},
    },
  ],
  total: 3,
};

export const SETTINGS = {
  id: 1,
  uid: 'evtwin',
  type: 'evtwin-twin-datasource',
  name: 'EVTwin',
  access: 'proxy',
  url: '/api/datasources/proxy/uid/evtwin',
  jsonData: { url: 'http://node-red:1880' },
  meta: {},
  readOnly: false,
} as unknown as DataSourceInstanceSettings<EvtwinOptions>;

export interface FetchCall {
  url: string;
  method?: string;
  data?: unknown;
}
export type Answer = { status: number; data: unknown };

/** A backendSrv.fetch answering from a table of path → answer (2xx resolves, else a FetchError). */
export function fakeFetch(
  answers: Record<string, Answer | ((c: FetchCall) => Answer)>,
  calls: FetchCall[] = [],
): (c: FetchCall) => Observable<unknown> {
  return (c) => {
    calls.push(c);
    const path = c.url.replace(/^\/api\/datasources\/proxy\/uid\/evtwin\/api/, '').replace(/\?.*$/, '');
    const a = answers[path];
    const r = typeof a === 'function' ? a(c) : (a ?? { status: 404, data: { message: 'Not found' } });
    return r.status < 300
      ? of({ ...r, ok: true, config: c })
      : throwError(() => ({ ...r, statusText: '', config: c }));
  };
}
