"""One sentence per chart, tying it to the algorithm step and the paper's symbols (PSS-Net, Sec. 3)."""

INTRO = (
    "PSS-Net trains one weight-sharing **supernet** and keeps, for each resource budget **θᵗ**, a **pool πᵗ** of the "
    "best subnet structures it has seen (Alg. 3); the pools steer sampling during training (Eq. 3–6) and yield one "
    "calibrated subnet per budget after it (Alg. 1)."
)

CHARTS = {
    "curves": "Alg. 2 trains three subnets per batch: the **max** subnet φᵐᵃˣ on the labels (cross-entropy), the **min** "
    "φᵐⁱⁿ and one **medium** subnet from a pool on the max subnet's soft labels (KL, in-place distillation); "
    "validation accuracy uses freshly re-estimated BN statistics.",
    "entries": "Every dot is a subnet φ in a pool πᵗ at the chosen epoch: its cost C(φ) against its pool metric **m** "
    "(the moving average of −loss, Alg. 3); the shaded bands are the budgets **θᵗ ± δ** a subnet must fall in, "
    "and bigger dots were sampled more often.",
    "animation": "Press ▶ play: the pools πᵗ epoch by epoch, each dot a subnet at its cost C(φ) and metric m. Early on "
    "the pools fill with subnets drawn from S; later, with p small, they change by pushes of better subnets and evictions "
    "of the worst (Alg. 3), and m rises as the supernet learns.",
    "evolution": "How each pool πᵗ changed epoch by epoch: subnets pushed in and evicted (Alg. 3 keeps the best **M** "
    "by **m**), the best and mean **m**, and the cost spread of its entries inside θᵗ ± δ.",
    "counters": "Where each pool's samples came from in this epoch: drawn from the structure space **S** (probability "
    "**p**, Eq. 3-4) or from the pool itself (1 − p, Eq. 6), and how many pushes, evictions and metric updates followed.",
    "table": "The entries of the pools at this epoch, best **m** first; q is each entry's Eq. 6 sampling probability "
    "and the accuracy column is filled once the run is calibrated at this epoch.",
    "probabilities": "**p** (Eq. 3) is the chance to explore the structure space S instead of exploiting the pool; it "
    "stays 1 until a pool is full, then decays as p_end^(e/E) (epoch e of E); **η** is the temperature of Eq. 6 and decays the same way, "
    "sharpening the pool distribution q.",
    "distribution": "Inside one pool: **q** (Eq. 6, softmax of m/η over the entries at the end of the epoch) next to "
    "the share of the pool's samples each entry actually got **in the same epoch** (from the snapshots' counters). "
    "q moved during the epoch as m was updated, so the two agree only roughly; early on, when p is high, most samples "
    "came from S and pushed new entries.",
    "profiles": "Width profile of each pool's best subnet: **oᵢ / oᵢᵐᵃˣ** per layer (Sec. 3.1), against the "
    "uniform-width subnet of about the same cost (dashed) that US-Net or MutualNet would use.",
    "channels": "The same subnets in channels: each column is a layer's output channels oᵢ, the last row its oᵢᵐᵃˣ; "
    "r is the input resolution in pixels. Every width is a multiple of the divisor (8 channels), which is why the "
    "uniform reference's ratio steps from layer to layer: w·oᵢᵐᵃˣ is rounded to the divisor, and layers with "
    "different oᵢᵐᵃˣ round differently.",
    "runs_curves": "The runs picked under *Compare with* (sidebar) next to this one: validation accuracy of the max and "
    "min subnets and the max subnet's loss per epoch. Differences of a point or two between single runs are often "
    "noise; `pss study` measures them with seeds and intervals.",
    "runs_diff": "Only the config keys whose values differ between these runs (everything else is the same).",
    "heatmap": "All pools at once: rows are budgets θᵗ (cheapest at the bottom), columns are layers, colour is "
    "oᵢ / oᵢᵐᵃˣ of the pool's best subnet — where PSS spends and saves channels.",
    "front": "After training, Alg. 1 re-estimates BN statistics of each pool's top-k subnets (and of the min and max "
    "subnets) and validates them. The step line is the Pareto front: the most accurate subnet any budget buys. An open "
    "circle is a pool's best that a cheaper-or-equal subnet beats (hover to see which); light marks are other "
    "candidates; green bars are test accuracy with its 95% interval (the test split never chooses).",
    "export": "Drag the budget, a ceiling: the most accurate calibrated subnet (validation accuracy, Eq. 5) whose cost "
    "is at most the budget is chosen, the same choice as `pss export --budget`; download it as a standalone model "
    "(.pt2 and ONNX, the same files `pss export` writes).",
    "selected_profile": "The chosen subnet's widths oᵢ / oᵢᵐᵃˣ per layer, with the uniform-width subnet of the same cost.",
}

STUDY_INTRO = (
    "A **study** (`pss study`) trains every strategy with several seeds, gives each the same selection effort, "
    "and compares the subnets each run exports per budget on the **test split**, which no selection saw. "
    "Differences are paired on the same test images, and each gets a verdict: *different*, *equivalent* within a "
    "margin, *inconclusive*, or *not comparable* when a strategy had to ship a subnet it never trained."
)

STUDY_HOWTO = (
    "Make one with `pss study fashion-mnist --out runs/study` (or a study file of your own) and point the runs "
    "folder at it: the dashboard then opens on this page."
)

STUDY_CHARTS = {
    "accuracy": "Per budget (a ceiling), each seed's run exports its most accurate calibrated subnet that fits "
    "(validation accuracy decides); the point is their mean test accuracy, the bar its 95% interval over seeds and "
    "test images, the label the input resolution it ships. A **×** at the bottom is a cell that is **not comparable**: "
    "some seed ships a subnet its strategy never trained (or none fits); it is neither a win nor a loss, and its hover "
    "says why.",
    "differences": "pss minus each baseline on the same test images, in percentage points; above the dashed line pss is "
    "more accurate. **Filled**: the verdict is *different* (p < 5% after Holm's adjustment over every comparison); "
    "**hollow**: *equivalent* (a difference beyond the margin is ruled out) or *inconclusive* (neither: the hover gives "
    "the difference the study could have detected); **×**: not comparable, not tested. Hover for each seed pair with "
    "McNemar's exact test.",
    "effort": "The same selection effort for every strategy is what makes the comparison fair: a strategy that chose "
    "among more calibrated subnets had more chances to find a good one.",
    "fronts": "Every run's Pareto front: the subnets some budget buys, drawn at their test accuracy with its 95% "
    "interval. One colour per strategy, one dash per seed; click a strategy in the legend to hide it.",
    "tables": "Verdicts as in the main comparison: Holm's adjustment over each table's tests, 'equivalent' within the "
    "study's margin (TOST), '—' where a cell is not comparable.",
    "cost": "Means over each strategy's runs: training time and throughput, and the time spent choosing subnets "
    "(calibration for pss, search for the others).",
}

EAS_INTRO = (
    "**Elastic Architecture Search** (EAS) deploys one supernet to many *scenarios*: a **superclass** (a group of "
    "classes a device cares about, e.g. only vehicles) and a budget **θ**. Training can prepare the supernet with "
    "**superclass dropout** (EAS Sec. 3.1: each image's other superclasses lose their logits now and then); after "
    "training, a small **architecture generator** maps (superclass, θ) to a subnet φ in one forward pass (Sec. 3.2), "
    "instead of a search per scenario."
)

EAS_TERMS = {
    "superclass": "A group of the dataset's classes that one deployment cares about (e.g. vehicles = airplane, "
    "automobile, ship, truck). The exported model keeps only those classes' outputs.",
    "dropout": "Superclass dropout (EAS Sec. 3.1): while training, each image's non-target superclasses lose their "
    "logits with this probability, so the supernet learns to tell classes apart inside one superclass.",
    "generator": "The architecture generator (EAS Sec. 3.2): an LSTM trained on the validation split with the supernet "
    "frozen; given a superclass and a budget it outputs the probability of every width and resolution choice.",
    "generated": "Architectures within the budget are drawn from the generator's probabilities, each is calibrated "
    "(BN statistics from training images of all classes, as `pss calibrate`), and the best on the superclass's validation images is kept; its test "
    "accuracy (the superclass's test images) only reports.",
}

EAS_CHARTS = {
    "card": "The architecture the generator chose for this scenario: widths oᵢ per layer and input resolution r. "
    "Accuracies count only the superclass's own classes (the exported model outputs only those).",
    "profile": "The generated subnet's widths oᵢ / oᵢᵐᵃˣ per layer, with the uniform-width subnet of about the same "
    "cost (dashed) that shrinks every layer alike.",
    "profiles": "Every superclass's generated subnet at this budget, one colour each: where the lines part, the "
    "generator spends channels differently for different superclasses.",
    "similarity": "EAS Fig. B: for each budget, the cosine similarity of the superclasses' architectures (one-hot "
    "width and resolution choices), averaged over every pair of superclasses. 1 means every superclass gets the "
    "same subnet; lower means the generator specialises. Baselines recorded with `pss generate --method` are dotted.",
    "table": "EAS Table 1: per budget (a ceiling) and method, each superclass's accuracy among its own classes with "
    "its 95% interval, then the mean over the images of the superclasses with more than one class (a one-class "
    "superclass is 100% for every model) and the mean cost of the architectures. Only the validation "
    "split chose the architectures.",
    "training": "The generator's training (EAS Alg. 1) per epoch: the cross-entropy of the architectures it generates "
    "on validation images, the cost loss (Eq. 3, zero when every architecture meets its budget) and the share of "
    "generated architectures within their budget.",
}
