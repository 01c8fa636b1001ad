import { CustomVariableSupport, type DataQueryRequest, type DataQueryResponse } from '@grafana/data';
import { from, map, type Observable } from 'rxjs';
import { VariableQueryEditor } from './components/VariableQueryEditor';
import type { DataSource } from './datasource';
import type { EvtwinVariableQuery } from './types';

/** Template variables for site, line, asset and metric, fed from the API (scoped to the user). */
export class EvtwinVariableSupport extends CustomVariableSupport<DataSource, EvtwinVariableQuery> {
  editor = VariableQueryEditor;

  constructor(private readonly ds: DataSource) {
    super();
  }

  query(request: DataQueryRequest<EvtwinVariableQuery>): Observable<DataQueryResponse> {
    const q = request.targets[0];
    return from(this.ds.findVariableValues(q, request.scopedVars)).pipe(map((data) => ({ data })));
  }
}
