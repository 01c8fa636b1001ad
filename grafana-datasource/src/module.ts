import { DataSourcePlugin } from '@grafana/data';
import { ConfigEditor } from './components/ConfigEditor';
import { QueryEditor } from './components/QueryEditor';
import { DataSource } from './datasource';
import type { EvtwinOptions, EvtwinQuery, EvtwinSecureJsonData } from './types';

export const plugin = new DataSourcePlugin<DataSource, EvtwinQuery, EvtwinOptions, EvtwinSecureJsonData>(
  DataSource,
)
  .setConfigEditor(ConfigEditor)
  .setQueryEditor(QueryEditor);
