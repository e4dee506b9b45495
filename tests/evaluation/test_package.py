from kerasft import evaluation
from kerasft.evaluation import boxes
from kerasft.evaluation import captioning
from kerasft.evaluation import coco
from kerasft.evaluation import entities
from kerasft.evaluation import generation
from kerasft.evaluation import metrics
from kerasft.evaluation import plots
from kerasft.evaluation import segmentation
from kerasft.evaluation import squad


def test_package_reexports_every_module_public_name():
    modules = (metrics, boxes, coco, plots, squad, entities, generation,
               captioning, segmentation)
    exported = sorted(name for module in modules for name in module.__all__)
    assert sorted(evaluation.__all__) == exported
    for module in modules:
        for name in module.__all__:
            assert getattr(evaluation, name) is getattr(module, name), name


def test_constants_stay_reachable_from_the_package():
    assert "detection" in evaluation.TASKS
    assert "center_xywh" in evaluation.BOX_FORMATS
