"""Resume by hand with mg.save/mg.load: N steps == N/2 + save + fresh objects + load + N/2, bit for bit (CPU)."""
import numpy as np

import minigen as mg
from minigen.data import DataLoader, TensorDataset


def _objects(init_seed):
    nn, optim = mg.nn, mg.optim
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 5)).astype(np.float32)
    y = rng.integers(0, 3, 30)
    mg.manual_seed(init_seed)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 3))
    opt = optim.AdamW(model.parameters(), lr=3e-2, weight_decay=0.1)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    gen = mg.Generator().manual_seed(11)
    loader = DataLoader(TensorDataset(x, y), batch_size=7, shuffle=True, generator=gen)
    return model, opt, sched, loader, gen


def _train(model, opt, sched, batches):
    for xb, yb in batches:
        opt.zero_grad()
        loss = mg.nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        sched.step()


def _run(model, opt, sched, loader, n):
    it, done = None, 0
    while done < n:
        it = iter(loader)
        for b in it:
            _train(model, opt, sched, [b])
            done += 1
            if done == n:
                break


def test_resume_bit_identical(tmp_path):
    N = 12  # 5 batches per epoch: the save at step 7 is in the middle of the second epoch, the rest crosses
    # into the third
    ref = _objects(0)
    _run(*ref[:4], N)

    a = _objects(0)
    model, opt, sched, loader, gen = a
    _run(model, opt, sched, loader, 7)
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
             "rng": mg.get_rng_state(), "loader": loader.state_dict(), "loader_gen": gen.get_state(), "step": 7}
    mg.save(state, tmp_path / "ckpt.safetensors")

    mg.manual_seed(12345)  # whatever happens in between must not matter
    b = _objects(1)
    model2, opt2, sched2, loader2, gen2 = b
    st = mg.load(tmp_path / "ckpt.safetensors")
    model2.load_state_dict(st["model"])
    opt2.load_state_dict(st["optimizer"])
    sched2.load_state_dict(st["scheduler"])
    mg.set_rng_state(st["rng"])
    loader2.load_state_dict(st["loader"])
    gen2.set_state(st["loader_gen"])
    assert st["step"] == 7 and st["loader"]["batches_done"] == 2
    _run(model2, opt2, sched2, loader2, N - 7)

    for (k, v), (k2, v2) in zip(ref[0].state_dict().items(), model2.state_dict().items()):
        assert k == k2 and np.array_equal(v.numpy(), v2.numpy()), k
    assert opt2.param_groups[0]["lr"] == ref[1].param_groups[0]["lr"]
