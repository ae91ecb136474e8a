"""scripts/scale_sim --validate: the simulation of 1 and 2 ranks on this machine against the real trainer.

Per repeat, one after the other so that a busy spell of the shared machine hits them alike:
  trace 1   build/tests/step_trace --clock wall, 1 thread, bound to core 0 (as mpirun -np 1 binds)
  trace 2   two step_trace processes at once, bound to cores 0 and 1 (as mpirun -np 2 binds): the
            compute of a rank while another rank computes beside it (shared memory bandwidth and
            caches); the two traces are averaged event by event
  1 rank    genesis train, local batch 1, threads 1, WARMUP + STEPS steps
  2 ranks   mpirun -np 2 genesis train, global batch 2 (1 per rank), the same
then the simulation of 1 rank (trace 1) and of 2 ranks (trace 2; and, to show what the contention
costs, trace 1) on mpi/platforms/this_machine.xml, each with the data wait measured in its real run
(--data-seconds: the loader is not what is simulated). Measured: the mean over the steps after the
warm-up of metrics.csv's step time (global batch / samples_per_s) and all-reduce wait (comm_s);
the BN all-reduce time is the run's total ("BN all-reduce X s") over all its steps. Figures are the
medians over the repeats; the step-time error of 1 and 2 ranks must be within TOLERANCE.
"""
import csv
import os
import re
import statistics
import subprocess
import time

TOLERANCE = 0.15
WARMUP_STEPS = 1

CONFIG = """[model]
width = {width}
[prep]
normalize = ct
filter = none
border_xy = 8
border_z = 4
cubes_per_scan = 16
validation_fraction = 0.34
test_fraction = 0
[train]
data = {data}
learning_rate = 0.01
log_every = 1
checkpoint_minutes = 0
preview_epochs = 0
threads = 1
"""


def load():
    """The 1-minute load average, for the lines that print a timing."""
    return os.getloadavg()[0]


def relative_error(predicted, measured):
    """(predicted - measured) / measured; NaN when nothing was measured."""
    return (predicted - measured) / measured if measured > 0 else float('nan')


def average_traces(texts):
    """One step trace (text) whose compute and optim seconds are the means of those of `texts`, step
    traces of the same model (the same event sequence); every other line is the first trace's."""
    rows = [t.splitlines() for t in texts]
    if len({len(r) for r in rows}) != 1:
        raise ValueError('the step traces have different numbers of lines')
    out = []
    for lines in zip(*rows):
        words = [l.split() for l in lines]
        if words[0] and words[0][0] in ('compute', 'optim'):
            if any(w[0] != words[0][0] for w in words):
                raise ValueError('the step traces have different event sequences')
            out.append('%s %.6f' % (words[0][0], statistics.mean(float(w[1]) for w in words)))
        else:
            out.append(lines[0])
    return '\n'.join(out) + '\n'


def trace_compute(text):
    """Seconds of compute (compute + optim lines) in a step trace."""
    return sum(float(l.split()[1]) for l in text.splitlines() if l.startswith(('compute ', 'optim ')))


def step_metrics(path, global_batch, warmup=WARMUP_STEPS):
    """Means over a run's steps after `warmup` (metrics.csv, step rows): step, data, compute and comm
    seconds. A step row has no validation_loss; step seconds = global batch / samples_per_s."""
    with open(path) as f:
        rows = [r for r in csv.DictReader(f) if r['samples_per_s'] and not r['validation_loss']]
    rows = [r for r in rows if int(r['step']) > warmup]
    if not rows:
        raise ValueError('%s: no step after the %d warm-up step(s)' % (path, warmup))
    return {'steps': len(rows),
            'step': statistics.mean(global_batch / float(r['samples_per_s']) for r in rows),
            'data': statistics.mean(float(r['data_s']) for r in rows),
            'compute': statistics.mean(float(r['compute_s']) for r in rows),
            'wait': statistics.mean(float(r['comm_s']) for r in rows)}


def bn_seconds(log_text):
    """The BN all-reduce seconds of a whole run, from its closing line; 0 when it has none."""
    m = re.search(r'BN all-reduce ([0-9.]+) s', log_text)
    return float(m.group(1)) if m else 0.0


def compare(measured, predicted, tolerance=TOLERANCE):
    """measured, predicted: {ranks: {'step': s, 'wait': s}} (medians). Returns (rows, ok): a row per
    rank count with the relative errors; ok when every step-time error is within tolerance."""
    rows, ok = [], True
    for ranks in sorted(measured):
        m, p = measured[ranks], predicted[ranks]
        step_error = relative_error(p['step'], m['step'])
        rows.append(dict(ranks=ranks, measured_step=m['step'], predicted_step=p['step'], step_error=step_error,
                         measured_wait=m['wait'], predicted_wait=p['wait'],
                         wait_error=relative_error(p['wait'], m['wait'])))
        ok = ok and abs(step_error) <= tolerance
    return rows, ok


def median_of(runs, key):
    return statistics.median(r[key] for r in runs)


class Validation:
    """The measurements and simulations of scale_sim --validate. simulate(ranks, trace, data_seconds)
    runs the simulator on this machine's platform and returns its result line (a dict)."""

    def __init__(self, opt, simulate, workdir):
        self.opt, self.simulate, self.dir = opt, simulate, workdir
        root = opt.root
        self.genesis = opt.genesis or os.path.join(root, 'build', 'genesis')
        self.step_trace = opt.step_trace or os.path.join(root, 'build', 'tests', 'step_trace')
        self.env = dict(os.environ, OMPI_MCA_pml=os.environ.get('OMPI_MCA_pml', 'ob1'),
                        OMPI_MCA_btl=os.environ.get('OMPI_MCA_btl', 'self,vader'),
                        OPENBLAS_NUM_THREADS='1')
        if os.getuid() == 0:
            self.env.update(OMPI_ALLOW_RUN_AS_ROOT='1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM='1')
        self.config = os.path.join(workdir, 'validate.ini')

    def run(self, cmd, log=None):
        p = subprocess.run(cmd, env=self.env, cwd=self.dir, capture_output=True, text=True)
        if log:
            with open(log, 'w') as f:
                f.write(p.stdout + p.stderr)
        if p.returncode != 0:
            tail = (p.stdout + p.stderr)[-2000:]
            raise RuntimeError('failed (%d): %s\n%s' % (p.returncode, ' '.join(cmd), tail))
        return p.stdout

    def make_data(self):
        """3 phantom scans -> 48 cubes of 64x64x32, about 32 for training (bench_train's data)."""
        for tool in (self.genesis, self.step_trace):
            if not os.access(tool, os.X_OK):
                raise RuntimeError('%s not found: build first (scripts/build release)' % tool)
        data = os.path.join(self.dir, 'cubes.h5')
        with open(self.config, 'w') as f:
            f.write(CONFIG.format(width=self.opt.width, data=data))
        self.run([self.genesis, 'phantom', '--count', '3', '--output-dir', os.path.join(self.dir, 'scans'),
                  '--size', '160,160,64'])
        self.run([self.genesis, 'prep', self.config, '--set', 'prep.inputs=%s/scans/*.nii.gz' % self.dir,
                  '--set', 'prep.output=' + data])

    def traces(self, repeat):
        """(solo trace text, pair trace text): step_trace alone on core 0, then two at once on cores 0, 1."""
        cmd = [self.step_trace, '--width', str(self.opt.width), '--batch', '1', '--threads', '1', '--clock',
               'wall', '--steps', str(self.opt.trace_steps)]
        solo = self.run(['taskset', '-c', '0'] + cmd)
        procs = [subprocess.Popen(['taskset', '-c', str(core)] + cmd, env=self.env, stdout=subprocess.PIPE,
                                  text=True) for core in (0, 1)]
        outs = [p.communicate()[0] for p in procs]
        if any(p.returncode != 0 for p in procs):
            raise RuntimeError('step_trace failed (two at once)')
        pair = average_traces(outs)
        for name, text in (('solo', solo), ('pair', pair)):
            with open(os.path.join(self.dir, 'trace-%s-%d.txt' % (name, repeat)), 'w') as f:
                f.write(text)
        return solo, pair

    def train(self, ranks, repeat):
        """One real run of ranks x 1 thread at 1 sample per rank; its step metrics and BN per step."""
        out = os.path.join(self.dir, 'run-%d-%d' % (ranks, repeat))
        steps = WARMUP_STEPS + self.opt.steps
        log = out + '.log'
        self.run(['mpirun', '-np', str(ranks), self.genesis, 'train', self.config, '--set', 'train.output=' + out,
                  '--set', 'train.batch=%d' % ranks, '--set', 'train.max_steps=%d' % steps], log)
        m = step_metrics(os.path.join(out, 'metrics.csv'), ranks)
        with open(log) as f:
            m['bn'] = bn_seconds(f.read()) / steps
        return m

    def predict(self, ranks, trace_text, data_seconds, name):
        path = os.path.join(self.dir, name)
        with open(path, 'w') as f:
            f.write(trace_text)
        return self.simulate(ranks, path, data_seconds)

    def run_all(self):
        opt = self.opt
        print('scale_sim --validate: width %d, 1 thread per rank, 1 sample per rank, %d warm-up + %d timed steps '
              'per run, %d repeats, interleaved; load average %.2f at the start' % (
                  opt.width, WARMUP_STEPS, opt.steps, opt.repeats, load()), flush=True)
        self.make_data()
        real = {1: [], 2: []}
        sim = {'1': [], '2': [], '2-solo': []}
        contention = []
        for r in range(opt.repeats):
            solo, pair = self.traces(r)
            contention.append(trace_compute(pair) / trace_compute(solo))
            print('  repeat %d: trace alone %.3f s, two at once %.3f s of compute (x%.3f)  [load %.2f]'
                  % (r + 1, trace_compute(solo), trace_compute(pair), contention[-1], load()), flush=True)
            for ranks in (1, 2):
                m = self.train(ranks, r)
                real[ranks].append(m)
                print('  repeat %d: %d rank(s): step %.3f s, data %.3f s, all-reduce wait %.4f s, BN %.4f s '
                      'per step  [load %.2f]' % (r + 1, ranks, m['step'], m['data'], m['wait'], m['bn'], load()),
                      flush=True)
            sim['1'].append(self.predict(1, solo, real[1][-1]['data'], 'trace-solo-%d.txt' % r))
            sim['2'].append(self.predict(2, pair, real[2][-1]['data'], 'trace-pair-%d.txt' % r))
            sim['2-solo'].append(self.predict(2, solo, real[2][-1]['data'], 'trace-solo-%d.txt' % r))
            for ranks in (1, 2):  # this repeat alone: a repeat disturbed by other jobs shows here
                p, m = sim[str(ranks)][-1], real[ranks][-1]
                print('  repeat %d: %d rank(s): simulated step %.3f s (%+.1f%%), all-reduce wait %.4f s'
                      % (r + 1, ranks, p['step'], 100 * relative_error(p['step'], m['step']), p['wait']),
                      flush=True)
        measured = {n: {k: median_of(real[n], k) for k in ('step', 'wait', 'bn', 'data')} for n in (1, 2)}
        predicted = {1: {k: median_of(sim['1'], k) for k in ('step', 'wait', 'bn')},
                     2: {k: median_of(sim['2'], k) for k in ('step', 'wait', 'bn')}}
        naive = {k: median_of(sim['2-solo'], k) for k in ('step', 'wait', 'bn')}
        rows, ok = compare(measured, predicted, opt.tolerance)
        print('\nmedians of %d repeats (load average %.2f now):' % (opt.repeats, load()))
        print('%5s %10s %10s %7s %10s %10s %8s %9s %9s' % ('ranks', 'real step', 'sim step', 'error', 'real wait',
                                                           'sim wait', 'error', 'real BN', 'sim BN'))
        for row in rows:
            n = row['ranks']
            print('%5d %9.3fs %9.3fs %+6.1f%% %9.4fs %9.4fs %+7.0f%% %8.4fs %8.4fs' % (
                n, row['measured_step'], row['predicted_step'], 100 * row['step_error'], row['measured_wait'],
                row['predicted_wait'], 100 * row['wait_error'], measured[n]['bn'], predicted[n]['bn']))
        print('2 ranks simulated with the trace of one rank alone (no contention): step %.3f s (%+.1f%%); '
              'compute of two at once / alone: x%.3f (median)' % (
                  naive['step'], 100 * relative_error(naive['step'], measured[2]['step']),
                  statistics.median(contention)))
        print('scale_sim --validate: %s (step-time error %s %.0f%%)' % (
            'ok' if ok else 'FAILED', 'within' if ok else 'beyond', 100 * opt.tolerance))
        return 0 if ok else 1


def selftest():
    """The arithmetic of the comparison on fixed inputs (ctest scale-sim-validate-arithmetic)."""
    import tempfile
    failures = []

    def expect(what, got, want):
        if abs(got - want) > 1e-9 * max(1.0, abs(want)):
            failures.append('%s: %r, expected %r' % (what, got, want))

    expect('relative error', relative_error(1.15, 1.0), 0.15)
    expect('relative error, low', relative_error(4.5, 5.0), -0.1)
    a = 'params 10\nforward\ncompute 0.100000\nbn 65\ncompute 0.300000\nfinish\noptim 0.050000\n'
    b = 'params 10\nforward\ncompute 0.200000\nbn 65\ncompute 0.500000\nfinish\noptim 0.070000\n'
    mean = average_traces([a, b])
    expect('averaged trace compute', trace_compute(mean), (0.45 + 0.77) / 2)
    if 'bn 65' not in mean or not mean.startswith('params 10\n'):
        failures.append('averaged trace lost its event lines:\n' + mean)
    try:
        average_traces([a, b.replace('bn 65\n', '')])
        failures.append('traces of different lengths were averaged')
    except ValueError:
        pass
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, 'metrics.csv')
        with open(path, 'w') as f:  # 2 ranks, global batch 2: a warm-up step, 2 steps, a validation row
            f.write('step,epoch,lr,train_loss,validation_loss,samples_per_s,data_s,compute_s,comm_s,'
                    'identity_loss,mean_loss,gain\n'
                    '1,0,0.01,0.5,,0.1000,0.9000,9.0000,1.0000,,,\n'
                    '2,0,0.01,0.4,,0.4000,0.1000,4.6000,0.3000,,,\n'
                    '3,0,0.01,0.3,,0.5000,0.0000,3.9000,0.1000,,,\n'
                    '3,0,0.01,,0.35,,,,,0.4,0.5,0.2\n')
        m = step_metrics(path, 2)
        expect('steps after the warm-up', m['steps'], 2)
        expect('mean step (2 / samples_per_s)', m['step'], (5.0 + 4.0) / 2)
        expect('mean wait', m['wait'], 0.2)
        expect('mean data', m['data'], 0.05)
    expect('BN seconds', bn_seconds('train: done: 4 steps, all-reduce wait 0.31 s, BN all-reduce 0.12 s, peak'),
           0.12)
    rows, ok = compare({1: {'step': 5.0, 'wait': 0.0}, 2: {'step': 5.0, 'wait': 0.2}},
                       {1: {'step': 5.5, 'wait': 0.0}, 2: {'step': 5.8, 'wait': 0.1}})
    expect('2-rank step error', rows[1]['step_error'], 0.16)
    expect('2-rank wait error', rows[1]['wait_error'], -0.5)
    if ok:
        failures.append('a 16% step-time error passed a 15% tolerance')
    rows, ok = compare({1: {'step': 5.0, 'wait': 0.0}}, {1: {'step': 4.3, 'wait': 0.0}})
    if not ok:
        failures.append('a -14% step-time error failed a 15% tolerance')
    for f in failures:
        print('scale_sim --selftest: ' + f)
    print('scale_sim --selftest: %s' % ('ok' if not failures else '%d failure(s)' % len(failures)))
    return 1 if failures else 0
