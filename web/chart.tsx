// A small time-series chart (uPlot): an agent's CPU or memory over the last minutes.
// `data-points` on the element says how many points it holds (the tests read it).
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface ChartProps {
  title: string;
  /** [unix seconds, value] */
  points: Array<[number, number]>;
  format: (v: number) => string;
  color: string;
  height?: number;
  /** A sparkline for a card: no axes. */
  compact?: boolean;
  testId?: string;
}

export function Chart({ title, points, format, color, height = 120, compact = false, testId }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  useEffect(() => {
    const el = box.current!;
    const opts: uPlot.Options = {
      width: el.clientWidth || 300,
      height,
      legend: { show: false },
      cursor: { show: false },
      series: [{}, { label: title, stroke: color, fill: `${color}33`, width: 1.5, value: (_u, v) => (v == null ? '–' : format(v)) }],
      axes: [
        { show: !compact, stroke: '#8b93a1', grid: { stroke: '#2a2f3a' }, ticks: { stroke: '#2a2f3a' } },
        {
          show: !compact,
          stroke: '#8b93a1',
          grid: { stroke: '#2a2f3a' },
          ticks: { stroke: '#2a2f3a' },
          size: 70,
          values: (_u, vals) => vals.map((v) => format(v)),
        },
      ],
      scales: { y: { range: (_u, min, max) => [0, Math.max(max, min + 1) * 1.1] } },
    };
    plot.current = new uPlot(opts, [[], []], el);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: el.clientWidth, height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [title, height, color, compact]);

  useEffect(() => {
    plot.current?.setData([points.map((p) => p[0]), points.map((p) => p[1])]);
  }, [points]);

  const lastPoint = points.at(-1);
  return (
    <figure class="chart" data-testid={testId} data-points={points.length}>
      <figcaption>
        {title} <strong>{lastPoint ? format(lastPoint[1]) : '–'}</strong>
      </figcaption>
      <div ref={box} />
    </figure>
  );
}
