import React from 'react';
import { fireEvent, render, screen } from '@testing-library/react';
import type { DataSourceSettings } from '@grafana/data';
import { ConfigEditor } from './ConfigEditor';
import type { EvtwinOptions, EvtwinSecureJsonData } from '../types';

type Settings = DataSourceSettings<EvtwinOptions, EvtwinSecureJsonData>;
const settings = (patch: Partial<Settings> = {}): Settings =>
  ({
    id: 1,
    uid: 'evtwin',
    name: 'EVTwin',
    type: 'evtwin-twin-datasource',
    access: 'proxy',
    url: '',
    jsonData: { url: 'http://node-red:1880' },
    secureJsonFields: {},
    ...patch,
  }) as unknown as Settings;

describe('ConfigEditor', () => {
  it('edits the URL (trailing slash dropped on blur) and explains send_user_header', () => {
    const onOptionsChange = jest.fn();
    const { rerender } = render(<ConfigEditor options={settings()} onOptionsChange={onOptionsChange} />);
    const url = screen.getByPlaceholderText('http://node-red:1880');
    expect(url).toHaveValue('http://node-red:1880');
    fireEvent.change(url, { target: { value: 'http:/' } });
    expect(onOptionsChange).toHaveBeenLastCalledWith(
      expect.objectContaining({ jsonData: { url: 'http:/' } }),
    );
    rerender(
      <ConfigEditor
        options={settings({ jsonData: { url: 'http://red.local:1880/' } })}
        onOptionsChange={onOptionsChange}
      />,
    );
    fireEvent.blur(url);
    expect(onOptionsChange).toHaveBeenLastCalledWith(
      expect.objectContaining({ jsonData: { url: 'http://red.local:1880' } }),
    );
    expect(screen.getByText('[dataproxy] send_user_header = true')).toBeInTheDocument();
  });

  it('sets the service token as secureJsonData', () => {
    const onOptionsChange = jest.fn();
    render(<ConfigEditor options={settings()} onOptionsChange={onOptionsChange} />);
    fireEvent.change(screen.getByPlaceholderText('service token'), { target: { value: 's3cret' } });
    const next = onOptionsChange.mock.lastCall[0] as Settings;
    expect(next.secureJsonData).toEqual({ serviceToken: 's3cret' });
    // Never in jsonData, which browsers can read.
    expect(JSON.stringify(next.jsonData)).not.toContain('s3cret');
  });

  it('shows a saved token as configured and resets it', () => {
    const onOptionsChange = jest.fn();
    render(
      <ConfigEditor
        options={settings({ secureJsonFields: { serviceToken: true } })}
        onOptionsChange={onOptionsChange}
      />,
    );
    expect(screen.getByDisplayValue('configured')).toBeDisabled();
    fireEvent.click(screen.getByRole('button', { name: 'Reset' }));
    const next = onOptionsChange.mock.lastCall[0] as Settings;
    expect(next.secureJsonFields).toEqual({ serviceToken: false });
    expect(next.secureJsonData).toEqual({ serviceToken: '' });
  });
});
