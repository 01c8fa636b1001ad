import React from 'react';
import { act, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { DataSource } from '../datasource';
import { ASSETS, SETTINGS, fakeFetch } from '../test/fixtures';
import type { EvtwinQuery } from '../types';
import { QueryEditor } from './QueryEditor';

const fetchImpl = jest.fn();
jest.mock('@grafana/runtime', () => ({
  getBackendSrv: () => ({ fetch: (c: unknown) => fetchImpl(c) }),
  getTemplateSrv: () => ({ getVariables: () => [{ name: 'site' }], replace: (t: string) => t }),
}));

async function setup(
  query: Partial<EvtwinQuery>,
  assets: { status: number; data: unknown } = { status: 200, data: ASSETS },
) {
  fetchImpl.mockImplementation(fakeFetch({ '/assets': assets }));
  const onChange = jest.fn();
  const onRunQuery = jest.fn();
  const ds = new DataSource(SETTINGS);
  const view = render(
    <QueryEditor
      datasource={ds}
      query={{ refId: 'A', ...query }}
      onChange={onChange}
      onRunQuery={onRunQuery}
    />,
  );
  await act(() => ds.getCatalogue().catch(() => undefined));
  return { onChange, onRunQuery, view };
}

/** Open a Grafana Select by its aria-label and return the option labels shown. */
async function openSelect(label: string): Promise<string[]> {
  fireEvent.keyDown(screen.getByLabelText(label), { key: 'ArrowDown' });
  const options = await screen.findAllByTestId('data-testid Select option');
  return options.map((o) => o.querySelector('span')?.textContent ?? '');
}

describe('QueryEditor', () => {
  beforeEach(() => fetchImpl.mockReset());

  it('changing the query type calls onChange and onRunQuery', async () => {
    const { onChange, onRunQuery } = await setup({ queryType: 'timeseries', metrics: ['power'] });
    const labels = await openSelect('Query type');
    expect(labels).toEqual([
      'Time series',
      'Latest state',
      'Events',
      'Annotations',
      'Assets',
      'Chargers',
      'Sessions',
      'Recommendations',
      'Grievances',
    ]);
    fireEvent.click(screen.getByText('Events'));
    expect(onChange).toHaveBeenLastCalledWith(
      expect.objectContaining({ queryType: 'events', metrics: ['power'] }),
    );
    expect(onRunQuery).toHaveBeenCalledTimes(1);
  });

  it('the site picker lists the sites from the API and the dashboard variables', async () => {
    const { onChange, onRunQuery } = await setup({
      queryType: 'timeseries',
      line: 'zone-1',
      assets: ['x/y'],
    });
    expect(await openSelect('Site')).toEqual(['Plant A', 'Water North', '$site']);
    fireEvent.click(screen.getByText('Plant A'));
    // A new site clears the line and assets chosen for the old one.
    expect(onChange).toHaveBeenLastCalledWith(
      expect.objectContaining({ site: 'plant-a', line: undefined, assets: undefined }),
    );
    expect(onRunQuery).toHaveBeenCalled();
  });

  it('lines, assets and metrics narrow to the chosen site', async () => {
    const { onChange } = await setup({ queryType: 'timeseries', site: 'plant-a', metrics: ['power'] });
    expect(await openSelect('Line')).toEqual(['Machining', 'Assembly', '$site']);
    fireEvent.keyDown(screen.getByLabelText('Line'), { key: 'Escape' });
    expect(await openSelect('Assets')).toEqual(['CNC mill 1', 'Assembly robot 1', '$site']);
    fireEvent.click(screen.getByText('Assembly robot 1'));
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ assets: ['plant-a/robot-01'] }));
    fireEvent.keyDown(screen.getByLabelText('Assets'), { key: 'Escape' });
    // power is chosen already: temperature (°C) is what is left, flow belongs to another site.
    expect(await openSelect('Metrics')).toEqual(['temperature', '$site']);
    fireEvent.click(screen.getByText('temperature'));
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ metrics: ['power', 'temperature'] }));
  });

  it('aggregation, interval, fill and live', async () => {
    const { onChange, onRunQuery } = await setup({ queryType: 'timeseries', metrics: ['power'] });
    fireEvent.click(screen.getByLabelText('Max'));
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ aggregation: 'max' }));
    fireEvent.change(screen.getByLabelText('Interval'), { target: { value: '1m' } });
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ interval: '1m' }));
    const runs = onRunQuery.mock.calls.length;
    fireEvent.blur(screen.getByLabelText('Interval'));
    expect(onRunQuery).toHaveBeenCalledTimes(runs + 1);
    await openSelect('Fill');
    fireEvent.click(screen.getByText('Previous'));
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ fill: 'previous' }));
    fireEvent.click(screen.getByLabelText('Live'));
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ live: true }));
  });

  it('grievance status and limit', async () => {
    const { onChange } = await setup({ queryType: 'grievances' });
    expect(screen.queryByLabelText('Metrics')).not.toBeInTheDocument();
    fireEvent.click(screen.getByLabelText('Open'));
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ status: 'open' }));
    fireEvent.change(screen.getByLabelText('Limit'), { target: { value: '50' } });
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ limit: 50 }));
  });

  it("shows the API's error when the pickers cannot load", async () => {
    await setup({ queryType: 'latest' }, { status: 401, data: { error: 'service token refused' } });
    await waitFor(() =>
      expect(
        screen.getByText(/EVTwin API 401: service token refused: check the service token/),
      ).toBeInTheDocument(),
    );
  });
});
