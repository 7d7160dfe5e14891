"""A script that runs a pipeline on worker processes from its top level, with no __main__ guard."""
import numpy as np

from batchkit import ArrayBatch, Dataset, action


class UnguardedBatch(ArrayBatch):
    components = ('x',)

    @action
    def double(self):
        self.x = self.x * 2
        return self


ds = Dataset(16, batch_class=UnguardedBatch, preloaded={'x': np.arange(16)})
ds.p.double().run(4, prefetch=2, target='processes')
print('finished')
