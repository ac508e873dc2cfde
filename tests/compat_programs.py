"""Small programs in the style of well-known public PyTorch examples (a VAE, an MNIST CNN trained with
Adadelta + StepLR, a word-level LSTM language model, the same LM over packed variable-length sentences),
written here from scratch against the torch API. ``tests/test_compat_programs.py`` runs each source twice:
as written (real torch) and with only its import lines pointed at minigen (``port``), on identical weights,
data and noise, and compares the losses.

Each program defines ``main(init, data)``: ``init`` is a dict of NumPy arrays (the torch model's initial
state_dict), ``data`` a dict of NumPy arrays; it returns ``{'losses': [...], 'state': {...}}``.
Where minigen still needs an edit beyond the imports, ``PATCHES[name]`` lists (old, new, why) text
substitutions applied to the minigen run only; the test that runs the unpatched source is a strict
xfail while a patch list is non-empty, so it reports the day the patch becomes unnecessary.
"""
import re

VAE = '''
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset


class VAE(nn.Module):
    def __init__(self):
        super(VAE, self).__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar, eps):
        std = torch.exp(0.5 * logvar)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x, eps):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar, eps)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction='sum')
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


def main(init, data):
    torch.manual_seed(1)
    device = torch.device("cpu")
    model = VAE().to(device)
    model.load_state_dict({k: torch.tensor(v) for k, v in init.items()})
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(torch.tensor(data["x"]), torch.tensor(data["eps"])), batch_size=16,
                        shuffle=False)
    losses = []
    model.train()
    train_loss = 0
    for batch_idx, (x, eps) in enumerate(loader):
        x = x.to(device)
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(x, eps)
        loss = loss_function(recon_batch, x, mu, logvar)
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
        losses.append(loss.item() / len(x))
    model.eval()
    with torch.no_grad():
        sample = model.decode(torch.tensor(data["z"]))
        losses.append(float(sample.sum()))
    return {"losses": losses, "state": {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}}
'''

MNIST = '''
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self, p1=0.25, p2=0.5):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(p1)
        self.dropout2 = nn.Dropout(p2)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def train(model, device, train_loader, optimizer, epoch, losses):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())


def test(model, device, test_loader):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction='sum').item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
    test_loss /= len(test_loader.dataset)
    return test_loss, correct


def main(init, data):
    torch.manual_seed(1)
    use_cuda = torch.cuda.is_available() and False
    device = torch.device("cuda" if use_cuda else "cpu")
    train_kwargs = {'batch_size': 8}
    test_kwargs = {'batch_size': 16}
    train_ds = TensorDataset(torch.tensor(data["x"]), torch.tensor(data["y"]))
    test_ds = TensorDataset(torch.tensor(data["tx"]), torch.tensor(data["ty"]))
    train_loader = DataLoader(train_ds, **train_kwargs)
    test_loader = DataLoader(test_ds, **test_kwargs)
    model = Net(0.0, 0.0).to(device)
    model.load_state_dict({k: torch.tensor(v) for k, v in init.items()})
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
    losses = []
    for epoch in range(1, 3):
        train(model, device, train_loader, optimizer, epoch, losses)
        test_loss, correct = test(model, device, test_loader)
        losses += [test_loss, float(correct)]
        scheduler.step()
        losses.append(scheduler.get_last_lr()[0])
    return {"losses": losses, "state": {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}}
'''

WORD_LM = '''
import math
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class RNNModel(nn.Module):
    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.5, tie_weights=False):
        super(RNNModel, self).__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        if rnn_type in ['LSTM', 'GRU']:
            self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        else:
            nonlinearity = {'RNN_TANH': 'tanh', 'RNN_RELU': 'relu'}[rnn_type]
            self.rnn = nn.RNN(ninp, nhid, nlayers, nonlinearity=nonlinearity, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            self.decoder.weight = self.encoder.weight
        self.init_weights()
        self.rnn_type = rnn_type
        self.nhid = nhid
        self.nlayers = nlayers

    def init_weights(self):
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output)
        decoded = decoded.view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        if self.rnn_type == 'LSTM':
            return (weight.new_zeros(self.nlayers, bsz, self.nhid),
                    weight.new_zeros(self.nlayers, bsz, self.nhid))
        else:
            return weight.new_zeros(self.nlayers, bsz, self.nhid)


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    data = data.view(bsz, -1).t().contiguous()
    return data


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    else:
        return tuple(repackage_hidden(v) for v in h)


def get_batch(source, i, bptt):
    seq_len = min(bptt, len(source) - 1 - i)
    data = source[i:i+seq_len]
    target = source[i+1:i+1+seq_len].view(-1)
    return data, target


def evaluate(model, data_source, bptt, criterion, eval_batch_size):
    model.eval()
    total_loss = 0.
    hidden = model.init_hidden(eval_batch_size)
    with torch.no_grad():
        for i in range(0, data_source.size(0) - 1, bptt):
            data, targets = get_batch(data_source, i, bptt)
            output, hidden = model(data, hidden)
            hidden = repackage_hidden(hidden)
            total_loss += len(data) * criterion(output, targets).item()
    return total_loss / (len(data_source) - 1)


def main(init, data):
    torch.manual_seed(1111)
    ntokens, bptt, clip, lr = 50, 7, 0.25, 20
    train_data = batchify(torch.tensor(data["train"]), 4)
    val_data = batchify(torch.tensor(data["val"]), 2)
    model = RNNModel(data["rnn_type"].item(), ntokens, 16, 24, 2, dropout=0.0)
    model.load_state_dict({k: torch.tensor(v) for k, v in init.items()})
    criterion = nn.NLLLoss()
    losses = []
    model.train()
    hidden = model.init_hidden(4)
    for batch, i in enumerate(range(0, train_data.size(0) - 1, bptt)):
        data_, targets = get_batch(train_data, i, bptt)
        model.zero_grad()
        hidden = repackage_hidden(hidden)
        output, hidden = model(data_, hidden)
        loss = criterion(output, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        losses.append(loss.item())
    val_loss = evaluate(model, val_data, bptt, criterion, 2)
    losses += [val_loss, math.exp(val_loss)]
    return {"losses": losses, "state": {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}}
'''

PACKED_LM = '''
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence, pack_padded_sequence, pad_packed_sequence


class SentenceLM(nn.Module):
    """An LSTM LM over a batch of sentences of different lengths, packed so padding is never read."""

    def __init__(self, ntoken, ninp, nhid, pad_idx=0):
        super().__init__()
        self.encoder = nn.Embedding(ntoken, ninp, padding_idx=pad_idx)
        self.rnn = nn.LSTM(ninp, nhid, num_layers=1, batch_first=True)
        self.decoder = nn.Linear(nhid, ntoken)

    def forward(self, tokens, lengths):
        emb = self.encoder(tokens)
        packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        out, (h, c) = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=tokens.size(1))
        return self.decoder(out), h


def main(init, data):
    torch.manual_seed(0)
    sentences = [torch.tensor(s) for s in data["sentences"]]
    lengths = torch.tensor([len(s) - 1 for s in sentences])
    inputs = pad_sequence([s[:-1] for s in sentences], batch_first=True, padding_value=0)
    targets = pad_sequence([s[1:] for s in sentences], batch_first=True, padding_value=-100)
    model = SentenceLM(30, 8, 12)
    model.load_state_dict({k: torch.tensor(v) for k, v in init.items()})
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    losses = []
    for step in range(4):
        optimizer.zero_grad()
        logits, h = model(inputs, lengths)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    losses.append(float(h.detach().abs().sum()))
    return {"losses": losses, "state": {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}}
'''

PROGRAMS = {"vae": VAE, "mnist_cnn_adadelta": MNIST, "word_lstm_lm": WORD_LM, "packed_sentence_lm": PACKED_LM}

# (old, new, why): edits the minigen run still needs beyond the import lines. Keep empty where possible.
PATCHES = {
    "vae": [],
    "mnist_cnn_adadelta": [],
    "word_lstm_lm": [],
    "packed_sentence_lm": [
        ("out, (h, c) = self.rnn(packed)", "out, (h, c) = torch.nn.utils.rnn.packed_rnn_forward(self.rnn, packed)",
         "nn.LSTM.forward does not accept a PackedSequence yet (hook in nn/modules/rnn.py)"),
    ],
}


def port(src):
    """Point a program's import lines (and only them) at minigen: ``import torch`` -> ``import minigen as
    torch``, ``import torch.nn as nn`` -> ``import minigen.nn as nn``, ``from torch.x import y`` ->
    ``from minigen.x import y``."""
    out = []
    for line in src.splitlines():
        if re.match(r"^import torch\s*$", line):
            line = "import minigen as torch"
        elif re.match(r"^import torch\.", line):
            line = re.sub(r"^import torch\.", "import minigen.", line)
        elif re.match(r"^from torch(\.| )", line):
            line = re.sub(r"^from torch", "from minigen", line)
        out.append(line)
    return "\n".join(out) + "\n"


def apply_patches(src, name):
    for old, new, _why in PATCHES[name]:
        if old not in src:
            raise AssertionError(f"patch for {name} no longer applies: {old!r}")
        src = src.replace(old, new)
    return src


def load(src, modname):
    import types

    mod = types.ModuleType(modname)
    exec(compile(src, f"<{modname}>", "exec"), mod.__dict__)
    return mod
