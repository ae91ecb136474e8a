#!/usr/bin/python3
"""The launch examples of README.md, INSTALL.md, jobs/ and conf/ run as written (jobs-integration).

Usage: examples.py SOURCE_DIR GENESIS WORK_DIR   (PATH must hold the stand-in srun, mpirun and
scontrol of tests/integration/jobs.sh; the stand-in launcher exits at once with LAUNCHER_EXIT)

Every line (code block, with its continuation lines, or `inline` span) that starts with mpirun,
srun, sbatch or qsub is an example, except templates (placeholders such as N, NP, T, CONFIG, [...]).
CONF in README's layout table stands for conf/chest_ct.ini; a span without genesis or a job script
(`srun --mpi=pmix`) is an option, not an example. Each example is checked:
  - genesis train under mpirun/srun: the ranks divide the global batch (conf + --set), the threads
    of the binding (PE=T, -c T) are the train.threads given, a batch above the paper's 6 states
    its learning-rate recipe (train.lr_scaling, as README's "Large global batches" recommends);
    those that fit 2 cores are run for real, on phantom cubes with --set model.width=4
    --set train.max_steps=2 (and this test's cubes file and run folder) added, as README.md says
  - sbatch/qsub: the job script runs under a simulated allocation of exactly what the line asks for
    (Slurm: SLURM_NTASKS, SLURM_CPUS_PER_TASK, SLURM_JOB_CPUS_PER_NODE; PBS: a node file of the
    select/nodes request, NCPUS, OMP_NUM_THREADS) and must reach the launch line (the stand-in
    launcher) with the ranks asked for: it did not refuse the layout.
Prints ok:/FAILED: lines; exits 1 if any failed or no example was found.
"""
import configparser, os, re, shlex, subprocess, sys

src, genesis, work = sys.argv[1:4]
failures, checks = 0, 0


def report(ok, what):
    global failures, checks
    checks += 1
    failures += not ok
    print(('ok: ' if ok else 'FAILED: ') + what, flush=True)


def examples():
    """(where, command text) of every example."""
    found = []
    for name in ('README.md', 'INSTALL.md'):
        lines = open(os.path.join(src, name)).read().split('\n')
        in_code, pending, start = False, '', 0
        for i, line in enumerate(lines, 1):
            if line.startswith('```'):
                in_code = not in_code
                continue
            texts = [line] if in_code else re.findall(r'`([^`]+)`', line)
            for text in texts:
                if in_code:
                    if not pending: start = i
                    pending += text.rstrip('\\').split('  #')[0] + ' '
                    if text.endswith('\\'): continue
                    text, pending = pending.strip(), ''
                if re.match(r'(mpirun|srun|sbatch|qsub)\s', text):
                    found.append((f'{name}:{start if in_code else i}', text))
    for folder in ('jobs/slurm', 'jobs/pbs', 'conf'):
        for f in sorted(os.listdir(os.path.join(src, folder))):
            for i, line in enumerate(open(os.path.join(src, folder, f)), 1):
                m = re.match(r'[#;]+\s+((mpirun|srun|sbatch|qsub)\s.*)', line.strip())
                if m and not line.startswith('#SBATCH') and not line.startswith('#PBS'):
                    found.append((f'{folder}/{f}:{i}', m.group(1)))
    return found


PLACEHOLDER = re.compile(r'(^|[\s=:,])(N|NP|T|C|R|B|CONFIG|FILE|ID|JOBID|HH:MM:SS|NAME)($|[\s,:\]])|\[|\.\.\.')


def batch_of(config, sets):
    c = configparser.ConfigParser(inline_comment_prefixes=(';',))
    c.read(os.path.join(src, config))
    settings = {'train.batch': c.get('train', 'batch', fallback='6')}
    for s in sets:
        k, _, v = s.partition('=')
        settings[k] = v
    return int(settings['train.batch']), settings


def sets_of(args):
    out, i = [], 0
    while i < len(args):
        if args[i] == '--set' and i + 1 < len(args): out.append(args[i + 1]); i += 1
        elif args[i].startswith('--set='): out.append(args[i][6:])
        i += 1
    return out


def check_recipe(where, batch, settings):
    if batch > 6:
        report('train.lr_scaling' in settings,
               f'{where}: batch {batch} states its learning-rate recipe (train.lr_scaling: README "Large global batches")')


cubes_made = False


def make_cubes():
    global cubes_made
    if cubes_made: return True
    scans = os.path.join(work, 'scans')
    steps = [[genesis, 'phantom', '--count', '2', '--output-dir', scans, '--size', '128,128,64'],
             [genesis, 'prep', os.path.join(src, 'conf/chest_ct.ini'), '--set', f'prep.inputs={scans}/*.nii.gz',
              '--set', f'prep.output={work}/cubes.h5', '--set', 'prep.filter=none', '--set', 'prep.border_xy=8',
              '--set', 'prep.border_z=4', '--set', 'prep.cubes_per_scan=8', '--set', 'prep.validation_fraction=0.5',
              '--set', 'prep.test_fraction=0']]
    for cmd in steps:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if r.returncode:
            print(r.stdout[-2000:], r.stderr[-2000:])
            return False
    cubes_made = True
    return True


def launch_example(where, words):
    """mpirun/srun genesis ...: static checks, and a real run when it fits 2 cores."""
    launcher = words[0]
    np_, threads_bound, i = 1, 1, 1
    while i < len(words) and words[i] != 'genesis':
        w = words[i]
        if w in ('-np', '-n', '--np'): np_ = int(words[i + 1]); i += 1
        elif w.startswith('--ntasks='): np_ = int(w.split('=')[1])
        elif w == '-c': threads_bound = int(words[i + 1]); i += 1
        elif w.startswith('--cpus-per-task='): threads_bound = int(w.split('=')[1])
        elif w == '--map-by' and 'PE=' in words[i + 1]: threads_bound = int(words[i + 1].split('PE=')[1]); i += 1
        i += 1
    rest = words[i + 1:]
    if not rest or rest[0] != 'train':
        report(i < len(words), f'{where}: {launcher} launches genesis ({" ".join(rest[:1])}: no layout rule)')
        return
    config, args = rest[1], rest[2:]
    batch, settings = batch_of(config, sets_of(args))
    threads = int(settings.get('train.threads', '1'))
    report(batch % np_ == 0, f'{where}: {np_} ranks divide the batch {batch}')
    report(threads == threads_bound, f'{where}: train.threads = {threads} is the {threads_bound} cores bound per rank')
    check_recipe(where, batch, settings)
    if np_ * threads > 2: return
    if not make_cubes():
        report(False, f'{where}: phantom cubes for the run')
        return
    out = os.path.join(work, 'run-' + re.sub(r'\W', '_', where))
    # the real launcher (PATH holds the stand-ins): ctest's MPIEXEC
    real = os.environ.get('MPIEXEC', 'mpirun') if launcher == 'mpirun' else launcher
    cmd = [real] + words[1:i] + [genesis] + rest + [
        '--set', f'train.data={work}/cubes.h5', '--set', f'train.output={out}',
        '--set', 'model.width=4', '--set', 'train.max_steps=2']
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=src)
    report(r.returncode == 0 and os.path.exists(f'{out}/ckpt/step-00000002.h5'),
           f'{where}: runs on this machine: {" ".join(words)}')
    if r.returncode: print(r.stdout[-1500:], r.stderr[-1500:])


def script_defaults(script):
    text = open(os.path.join(src, script)).read()
    return dict(re.findall(r'^#SBATCH --([a-z-]+)=(\S+)', text, re.M)), \
        re.findall(r'^#PBS -l (nodes=\S+)', text, re.M)


def run_script(where, script, args, env, np_):
    calls = os.path.join(work, 'calls.log')
    open(calls, 'w').close()
    env = dict(os.environ, GENESIS=genesis, GENESIS_JOBS_DIR=os.path.join(src, 'jobs'), LAUNCHER_EXIT='0',
               JOBS_TEST_LOG=calls, GENESIS_QSTAT='false', **env)
    for k in ('SLURM_JOB_ID', 'SLURM_NTASKS', 'SLURM_CPUS_PER_TASK', 'SLURM_JOB_CPUS_PER_NODE', 'PBS_JOBID',
              'PBS_NODEFILE', 'NCPUS', 'OMP_NUM_THREADS', 'PBS_WALLTIME'):
        if k not in env or env[k] is None: env.pop(k, None)
    r = subprocess.run(['bash', os.path.join(src, script)] + args, env=env, capture_output=True, text=True,
                       timeout=120, cwd=work)
    launched = open(calls).read()
    flag = '-n' if 'slurm' in script else '-np'
    ok = r.returncode == 0 and re.search(rf'\s{flag} {np_}\s', launched) is not None
    report(ok, f'{where}: {script} reaches its launch line with {np_} ranks')
    if not ok: print(r.stdout[-1500:], r.stderr[-1500:], launched)


def sbatch_example(where, words):
    i, opts = 1, {}
    while not words[i].startswith('jobs/'):
        k, _, v = words[i].lstrip('-').partition('=')
        opts[k] = v
        i += 1
    script, args = words[i], [os.path.join(src, a) if a.startswith('conf/') else a for a in words[i + 1:]]
    defaults, _ = script_defaults(script)
    nodes = int(opts.get('nodes', defaults.get('nodes', 1)))
    per_node = int(opts.get('ntasks-per-node', defaults.get('ntasks-per-node', 1)))
    cpt = int(opts.get('cpus-per-task', defaults.get('cpus-per-task', 1)))
    np_ = int(opts['ntasks']) if 'ntasks' in opts else nodes * per_node
    if 'pretrain' in script:
        batch, settings = batch_of('conf/chest_ct.ini', sets_of(args))
        check_recipe(where, batch, settings)
    run_script(where, script, args, {'SLURM_JOB_ID': '1', 'SLURM_NTASKS': str(np_), 'SLURM_CPUS_PER_TASK': str(cpt),
                                     'SLURM_JOB_CPUS_PER_NODE': f'{per_node * cpt}(x{nodes})',
                                     'GENESIS_LAUNCHER': 'srun'}, np_)


def qsub_example(where, words):
    i, resources, variables = 1, [], {}
    while not words[i].startswith('jobs/'):
        if words[i] == '-l': resources.append(words[i + 1]); i += 1
        elif words[i] == '-v':
            for item in words[i + 1].split(','):
                k, _, v = item.partition('=')
                variables[k] = v
            i += 1
        i += 1
    script = words[i]
    _, default_nodes = script_defaults(script)
    if not any(r.startswith(('select=', 'nodes=')) for r in resources): resources += default_nodes
    hosts, mpiprocs, ncpus, threads = 1, 1, None, None
    for r in resources:
        if r.startswith('select='):
            parts = r[7:].split(':')
            hosts = int(parts[0])
            kv = dict(p.split('=') for p in parts[1:])
            mpiprocs, ncpus = int(kv.get('mpiprocs', 1)), kv.get('ncpus')
            threads = kv.get('ompthreads')
        elif r.startswith('nodes='):
            parts = r[6:].split(':')
            hosts, mpiprocs = int(parts[0]), int(dict(p.split('=') for p in parts[1:]).get('ppn', 1))
    nodefile = os.path.join(work, 'nodefile')
    with open(nodefile, 'w') as f:
        for h in range(hosts): f.write(f'node{h}\n' * mpiprocs)
    if variables.get('GENESIS_CONFIG') == 'CONF': variables['GENESIS_CONFIG'] = 'conf/chest_ct.ini'
    if 'GENESIS_CONFIG' in variables: variables['GENESIS_CONFIG'] = os.path.join(src, variables['GENESIS_CONFIG'])
    if 'pretrain' in script:
        batch, settings = batch_of('conf/chest_ct.ini', variables.get('GENESIS_SETS', '').split())
        check_recipe(where, batch, settings)
    env = dict(variables, PBS_JOBID='1.test', PBS_O_WORKDIR=work, PBS_NODEFILE=nodefile, NCPUS=ncpus,
               OMP_NUM_THREADS=threads, GENESIS_LAUNCHER='mpirun', GENESIS_JOB_SCRIPT=os.path.join(src, script),
               GENESIS_QSUB='true')
    env = {k: v for k, v in env.items() if v is not None}
    if threads is None: env['OMP_NUM_THREADS'] = '1'
    run_script(where, script, [], env, hosts * mpiprocs)


found = examples()
for where, text in found:
    if PLACEHOLDER.search(text.replace('CONF ', 'conf/chest_ct.ini ').replace('=CONF,', '=conf/chest_ct.ini,')):
        print(f'skip (a template): {where}: {text}')
        continue
    text = re.sub(r'(?<=\s)CONF(?=\s|$)', 'conf/chest_ct.ini', text)
    words = shlex.split(text)
    if 'genesis' not in words and not any(w.startswith('jobs/') for w in words):
        print(f'skip (not a command line): {where}: {text}')
        continue
    if words[0] in ('mpirun', 'srun'): launch_example(where, words)
    elif words[0] == 'sbatch': sbatch_example(where, words)
    else: qsub_example(where, words)
report(checks > 0, f'{len(found)} examples found')
print(f'examples: {checks - failures} passed, {failures} failed')
sys.exit(1 if failures else 0)
