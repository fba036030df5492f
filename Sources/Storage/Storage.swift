import CWOM
